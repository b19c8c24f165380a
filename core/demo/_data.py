"""Static reference data for the demo region: places, names and the product catalogue.

Coordinates are WGS-84 centres of real districts (rounded); stores and customers are
scattered a few kilometres around them, so maps look like East China without pointing at
anybody's real shop. Store and shop names are built from common landmark and trade-name
words; people's names from the most common Chinese surnames and given-name characters.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class District:
    name: str  # 徐汇
    suffix: str  # 区 / 市 (county-level city) — used in customer names "西湖区"
    lat: float
    lon: float
    landmarks: tuple[str, ...]  # shopping centres / streets used for store names


@dataclass(frozen=True)
class City:
    name: str  # 上海
    name_en: str
    province: str  # 上海市 / 江苏省 / 浙江省
    tier: int  # 1 = first / new-first tier, 2 = other
    stores: int  # demo stores at scale 1
    districts: tuple[District, ...]


@dataclass(frozen=True)
class RegionSpec:
    code: str
    name: str
    name_en: str
    reps: int  # at scale 1
    cities: tuple[City, ...]


def _d(name: str, lat: float, lon: float, *landmarks: str, suffix: str = "区") -> District:
    return District(name, suffix, lat, lon, landmarks)


REGIONS: tuple[RegionSpec, ...] = (
    RegionSpec(
        "SH",
        "上海区",
        "Shanghai",
        46,
        (
            City(
                "上海",
                "Shanghai",
                "上海市",
                1,
                30,
                (
                    _d("徐汇", 31.1883, 121.4365, "美罗城", "港汇恒隆", "漕河泾", "田林"),
                    _d("静安", 31.2290, 121.4480, "静安寺", "大悦城", "南京西路"),
                    _d("黄浦", 31.2317, 121.4846, "新天地", "人民广场", "淮海中路"),
                    _d("长宁", 31.2204, 121.4243, "中山公园", "天山", "虹桥"),
                    _d(
                        "浦东",
                        31.2215,
                        121.5447,
                        "陆家嘴",
                        "张江",
                        "金桥",
                        "八佰伴",
                        "世纪公园",
                        suffix="新区",
                    ),
                    _d("闵行", 31.1127, 121.3817, "七宝", "莘庄", "虹桥天地"),
                    _d("杨浦", 31.2595, 121.5260, "五角场", "控江路"),
                    _d("普陀", 31.2497, 121.3960, "长风", "真如"),
                    _d("虹口", 31.2646, 121.5052, "四川北路", "北外滩"),
                    _d("宝山", 31.4050, 121.4891, "大华", "宝山万达"),
                    _d("嘉定", 31.3747, 121.2655, "嘉定新城", "南翔"),
                    _d("松江", 31.0322, 121.2277, "松江万达", "九亭"),
                    _d("青浦", 31.1497, 121.1241, "赵巷", "徐泾"),
                ),
            ),
        ),
    ),
    RegionSpec(
        "JS",
        "江苏区",
        "Jiangsu",
        43,
        (
            City(
                "南京",
                "Nanjing",
                "江苏省",
                1,
                9,
                (
                    _d("玄武", 32.0487, 118.7977, "新街口", "珠江路"),
                    _d("鼓楼", 32.0663, 118.7700, "湖南路", "凤凰街"),
                    _d("秦淮", 32.0337, 118.7946, "夫子庙", "大行宫"),
                    _d("建邺", 32.0040, 118.7320, "河西万达", "奥体"),
                    _d("江宁", 31.9536, 118.8399, "百家湖", "东山"),
                ),
            ),
            City(
                "苏州",
                "Suzhou",
                "江苏省",
                1,
                8,
                (
                    _d("姑苏", 31.3114, 120.6175, "观前街", "石路"),
                    _d("工业园区", 31.3170, 120.7230, "湖东", "圆融", "李公堤", suffix=""),
                    _d("吴中", 31.2626, 120.6318, "龙湖天街", "木渎"),
                    _d("相城", 31.3690, 120.6420, "活力岛"),
                    _d("虎丘", 31.2990, 120.5660, "狮山", "淮海街"),
                ),
            ),
            City(
                "无锡",
                "Wuxi",
                "江苏省",
                2,
                5,
                (
                    _d("梁溪", 31.5660, 120.2960, "崇安寺", "南长街"),
                    _d("滨湖", 31.5220, 120.2830, "万达", "蠡湖"),
                    _d("新吴", 31.5500, 120.3580, "宝龙", "旺庄"),
                ),
            ),
            City(
                "常州",
                "Changzhou",
                "江苏省",
                2,
                3,
                (
                    _d("天宁", 31.7796, 119.9746, "南大街", "红梅"),
                    _d("钟楼", 31.7800, 119.9020, "吾悦"),
                    _d("新北", 31.8306, 119.9749, "万达", "恐龙园"),
                ),
            ),
            City(
                "南通",
                "Nantong",
                "江苏省",
                2,
                3,
                (
                    _d("崇川", 32.0103, 120.8574, "南大街", "文峰"),
                    _d("通州", 32.0661, 121.0730, "金沙"),
                ),
            ),
        ),
    ),
    RegionSpec(
        "ZJ",
        "浙江区",
        "Zhejiang",
        38,
        (
            City(
                "杭州",
                "Hangzhou",
                "浙江省",
                1,
                10,
                (
                    _d("西湖", 30.2592, 120.1300, "文三路", "黄龙", "西溪"),
                    _d("上城", 30.2428, 120.1692, "湖滨银泰", "吴山广场", "钱江新城"),
                    _d("拱墅", 30.3196, 120.1420, "大关", "运河"),
                    _d("滨江", 30.2084, 120.2119, "星光大道", "龙湖天街"),
                    _d("余杭", 30.4186, 120.3000, "未来科技城", "临平"),
                    _d("萧山", 30.1850, 120.2644, "萧山银隆", "市心广场"),
                ),
            ),
            City(
                "宁波",
                "Ningbo",
                "浙江省",
                2,
                6,
                (
                    _d("海曙", 29.8599, 121.5509, "天一广场", "鼓楼"),
                    _d("鄞州", 29.8170, 121.5470, "万达", "南部商务区"),
                    _d("江北", 29.8866, 121.5551, "老外滩", "来福士"),
                ),
            ),
            City(
                "温州",
                "Wenzhou",
                "浙江省",
                2,
                3,
                (
                    _d("鹿城", 28.0155, 120.6551, "五马街", "印象城"),
                    _d("瓯海", 27.9669, 120.6376, "万达"),
                    _d("龙湾", 27.9329, 120.8116, "永中"),
                ),
            ),
            City(
                "绍兴",
                "Shaoxing",
                "浙江省",
                2,
                3,
                (
                    _d("越城", 29.9966, 120.5823, "解放路", "银泰"),
                    _d("柯桥", 30.0817, 120.4950, "轻纺城"),
                ),
            ),
            City(
                "嘉兴",
                "Jiaxing",
                "浙江省",
                2,
                3,
                (
                    _d("南湖", 30.7469, 120.7836, "八佰伴", "万达"),
                    _d("秀洲", 30.7633, 120.7090, "秀洲万达"),
                ),
            ),
        ),
    ),
)

#: The 60 most common surnames (weights fall off roughly like the census).
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜"
    "叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶"
)
GIVEN_MALE = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林欢阳建国志文海峰晨浩然"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞燕玲婷雪琳颖倩洁晶红梅莉慧佳琪萍瑶欣怡婧蕾雯露丹璐妍晓"

ROADS = (
    "中山路", "人民路", "解放路", "建设路", "和平路", "长江路", "延安路", "新华路", "文化路",
    "青年路", "光明路", "胜利路", "东风路", "幸福路", "友谊路", "朝阳路",
    "学院路", "园林路", "湖滨路", "江南大道", "世纪大道", "创业路", "科技路", "健康路",
)  # fmt: skip

TRADE_WORDS = (
    "鑫源", "华联", "佳美", "好又多", "万家", "福满多", "金盛", "恒丰", "家家乐", "惠民",
    "邻里", "便民", "优品", "新世纪", "富华", "祥和", "德润", "盛世", "同心", "日日鲜",
    "天天", "宏达", "利民", "兴隆", "顺发", "长青", "康乐", "安心", "百顺", "旺福",
    "好邻居", "金桥", "永兴", "聚源", "嘉禾", "瑞丰", "喜乐", "汇丰", "裕丰", "东升",
    "春晖", "博文", "鸿运", "乐家", "宜家乐", "红叶", "丰收", "一品", "老街", "阿明",
)  # fmt: skip

#: segment -> (weight, name suffixes, monthly purchases factor, inventory turns per year)
SEGMENTS: dict[str, tuple[int, tuple[str, ...], float, float]] = {
    "便利店": (30, ("便利店", "便利", "24小时便利店"), 1.0, 24.0),
    "超市": (20, ("超市", "生活超市", "购物中心"), 2.2, 18.0),
    "餐饮": (20, ("餐厅", "饭店", "小吃店", "面馆"), 0.9, 30.0),
    "母婴店": (10, ("母婴店", "孕婴生活馆"), 0.8, 8.0),
    "药店": (10, ("大药房", "药店"), 0.7, 6.0),
    "烟酒店": (10, ("烟酒店", "名烟名酒", "烟酒商行"), 1.1, 5.0),
}

VISIT_PURPOSES = (
    "例行拜访",
    "新品推广",
    "订单跟进",
    "陈列检查",
    "回款催收",
    "客诉处理",
    "商务洽谈",
)

#: purpose -> short voice-memo sentences (the app's speech-to-text summary of the visit)
VOICE_SUMMARIES: dict[str, tuple[str, ...]] = {
    "例行拜访": (
        "老板说最近客流还行，饮料走得快，下周补两箱矿泉水。",
        "店里库存正常，货架整齐，约好下周同一时间再来。",
        "老板娘在，聊了聊最近的销售情况，暂时不需要补货。",
        "常规巡店，临期品已下架，提醒老板注意酸奶日期。",
    ),
    "新品推广": (
        "介绍了新口味酸奶，老板愿意先试销一箱。",
        "新品试吃反馈不错，老板考虑放到收银台旁边。",
        "老板对新品价格有顾虑，留了样品，下周回访。",
    ),
    "订单跟进": (
        "确认了上周订单的到货时间，老板要求周三前送到。",
        "订单数量需要调整，冷冻品减半，零食加一箱。",
        "老板追加了饮料订单，已在系统里下单。",
    ),
    "陈列检查": (
        "端架陈列已按标准调整，拍照留档。",
        "冷柜里的饮料排面不足，和店员一起重新摆放。",
        "发现竞品占了我们的堆头，已和老板沟通。",
    ),
    "回款催收": (
        "上月货款还差一部分，老板答应月底前结清。",
        "已收到转账截图，回款完成。",
        "老板说资金紧张，申请延期一周付款。",
    ),
    "客诉处理": (
        "上批面包有两袋破损，已登记退换。",
        "顾客反映牛奶口感有问题，已取样送检并安抚老板。",
    ),
    "商务洽谈": (
        "谈了年度供货协议，老板希望返点再提高一个点。",
        "讨论了冷柜投放方案，需要区域经理审批。",
        "老板有意向增加母婴品类，下次带报价过来。",
    ),
}

OPPORTUNITY_TITLES = (
    "新品铺货", "年度供货协议", "冷柜投放", "季度返利方案", "团购订单", "节日礼盒订单",
    "陈列费合作", "品类扩充", "门店联营", "批量补货",
)  # fmt: skip

NEXT_STEPS = ("电话确认报价", "上门送样", "签约面谈", "催收货款", "安排试吃活动", "提交审批")

#: category -> (shelf life days range or None, alert days, share of assortment, products)
#: products: (name zh, name en, unit, price yuan)
CATALOGUE: dict[
    str, tuple[tuple[int, int] | None, int, tuple[tuple[str, str, str, float], ...]]
] = {
    "乳制品": (
        (7, 21),
        3,
        (
            ("鲜牛奶 950ml", "Fresh milk 950ml", "瓶", 16.8),
            ("鲜牛奶 250ml", "Fresh milk 250ml", "瓶", 5.5),
            ("低脂鲜牛奶 950ml", "Low-fat milk 950ml", "瓶", 17.5),
            ("原味酸奶 100g×8", "Plain yoghurt 100g x8", "组", 19.9),
            ("草莓酸奶 200g", "Strawberry yoghurt 200g", "杯", 6.5),
            ("希腊酸奶 135g", "Greek yoghurt 135g", "杯", 8.9),
            ("风味发酵乳 230g", "Drinking yoghurt 230g", "瓶", 7.5),
            ("儿童奶酪棒 500g", "Kids cheese sticks 500g", "袋", 39.9),
            ("鲜奶布丁 2杯装", "Milk pudding x2", "组", 9.9),
            ("巴氏杀菌奶 1L", "Pasteurised milk 1L", "盒", 18.5),
            ("无糖酸奶 450g", "Unsweetened yoghurt 450g", "杯", 14.9),
            ("乳酸菌饮品 100ml×5", "Lactic drink 100ml x5", "组", 12.5),
            ("淡奶油 250ml", "Whipping cream 250ml", "盒", 22.0),
            ("黄油 227g", "Butter 227g", "块", 28.0),
            ("豆乳 1L", "Soy milk 1L", "盒", 12.8),
        ),
    ),
    "烘焙": (
        (3, 7),
        2,
        (
            ("全麦吐司 400g", "Wholemeal toast 400g", "袋", 12.9),
            ("牛奶吐司 400g", "Milk toast 400g", "袋", 11.9),
            ("法式可颂 4个装", "Croissants x4", "袋", 15.9),
            ("肉松面包", "Pork floss bun", "个", 6.5),
            ("红豆面包", "Red bean bun", "个", 5.5),
            ("奶油蛋糕卷", "Cream swiss roll", "盒", 18.0),
            ("芝士蛋糕 切块", "Cheesecake slice", "盒", 16.0),
            ("手撕面包 500g", "Pull-apart bread 500g", "袋", 13.9),
            ("全麦贝果 2个装", "Wholemeal bagels x2", "袋", 12.0),
            ("蛋黄酥 4枚", "Egg-yolk pastry x4", "盒", 19.9),
            ("菠萝包", "Pineapple bun", "个", 5.0),
            ("欧式杂粮面包", "Multigrain loaf", "个", 14.5),
        ),
    ),
    "生鲜": (
        (2, 6),
        1,
        (
            ("有机菠菜 300g", "Organic spinach 300g", "袋", 8.9),
            ("小番茄 500g", "Cherry tomatoes 500g", "盒", 12.9),
            ("黄瓜 500g", "Cucumbers 500g", "袋", 5.9),
            ("香蕉 1kg", "Bananas 1kg", "串", 9.9),
            ("富士苹果 4个装", "Fuji apples x4", "袋", 15.9),
            ("红心火龙果 2个", "Red dragon fruit x2", "盒", 19.9),
            ("鲜鸡蛋 10枚", "Fresh eggs x10", "盒", 14.9),
            ("冷鲜鸡胸肉 400g", "Chicken breast 400g", "盒", 18.9),
            ("猪里脊 300g", "Pork tenderloin 300g", "盒", 22.9),
            ("三文鱼切片 150g", "Salmon sashimi 150g", "盒", 39.9),
            ("鲜切水果杯", "Fresh fruit cup", "杯", 12.0),
            ("豆腐 400g", "Tofu 400g", "盒", 4.5),
            ("饭团 金枪鱼", "Tuna rice ball", "个", 7.5),
            ("三明治 火腿鸡蛋", "Ham and egg sandwich", "个", 9.9),
            ("便当 红烧鸡腿饭", "Braised chicken bento", "份", 19.9),
            ("凉面 鸡丝", "Chicken cold noodles", "份", 14.9),
            ("关东煮组合", "Oden set", "份", 12.0),
        ),
    ),
    "冷冻": (
        (180, 365),
        30,
        (
            ("速冻水饺 猪肉白菜 1kg", "Frozen dumplings pork 1kg", "袋", 29.9),
            ("速冻汤圆 黑芝麻 500g", "Frozen tangyuan sesame 500g", "袋", 15.9),
            ("冷冻虾仁 300g", "Frozen shrimp 300g", "袋", 39.9),
            ("雪糕 香草 6支装", "Vanilla ice cream x6", "盒", 25.0),
            ("冰淇淋 巧克力 桶装", "Chocolate ice cream tub", "桶", 32.0),
            ("速冻馄饨 荠菜 400g", "Frozen wontons 400g", "袋", 18.9),
            ("冷冻薯条 1kg", "Frozen fries 1kg", "袋", 22.0),
            ("速冻披萨 9寸", "Frozen pizza 9in", "盒", 35.0),
            ("冷冻鸡翅中 500g", "Frozen chicken wings 500g", "袋", 32.9),
            ("小笼包 速冻 400g", "Frozen xiaolongbao 400g", "袋", 19.9),
            ("冰棍 绿豆 10支", "Mung bean ice lolly x10", "袋", 15.0),
        ),
    ),
    "饮料": (
        (180, 540),
        30,
        (
            ("矿泉水 550ml", "Mineral water 550ml", "瓶", 2.0),
            ("矿泉水 550ml×24", "Mineral water 550ml x24", "箱", 36.0),
            ("可乐 330ml", "Cola 330ml", "罐", 3.0),
            ("无糖可乐 330ml", "Zero cola 330ml", "罐", 3.0),
            ("冰红茶 500ml", "Iced tea 500ml", "瓶", 3.5),
            ("绿茶 500ml", "Green tea 500ml", "瓶", 3.5),
            ("橙汁 1L", "Orange juice 1L", "盒", 12.9),
            ("苏打水 柠檬味 410ml", "Lemon soda water 410ml", "瓶", 4.5),
            ("功能饮料 250ml", "Energy drink 250ml", "罐", 6.0),
            ("即饮咖啡 拿铁 280ml", "Latte RTD 280ml", "瓶", 8.0),
            ("椰子水 330ml", "Coconut water 330ml", "瓶", 9.9),
            ("乌龙茶 无糖 500ml", "Oolong tea 500ml", "瓶", 5.0),
            ("啤酒 500ml", "Beer 500ml", "罐", 6.5),
            ("精酿啤酒 330ml", "Craft beer 330ml", "瓶", 15.0),
            ("酸梅汤 300ml", "Sour plum drink 300ml", "瓶", 5.0),
            ("气泡水 白桃味 480ml", "Sparkling water peach 480ml", "瓶", 5.5),
        ),
    ),
    "零食": (
        (120, 300),
        20,
        (
            ("薯片 原味 75g", "Potato chips 75g", "袋", 7.5),
            ("薯片 黄瓜味 75g", "Cucumber chips 75g", "袋", 7.5),
            ("每日坚果 25g×7", "Daily nuts 25g x7", "盒", 39.9),
            ("牛肉干 100g", "Beef jerky 100g", "袋", 25.0),
            ("巧克力 排块 100g", "Chocolate bar 100g", "块", 15.0),
            ("饼干 苏打 400g", "Soda crackers 400g", "袋", 12.9),
            ("威化饼 180g", "Wafers 180g", "袋", 9.9),
            ("辣条 106g", "Spicy gluten strips 106g", "袋", 5.0),
            ("海苔 4g×10", "Seaweed snack x10", "袋", 19.9),
            ("瓜子 焦糖 200g", "Caramel sunflower seeds 200g", "袋", 8.5),
            ("果冻 6杯装", "Jelly cups x6", "组", 10.0),
            ("蛋卷 200g", "Egg rolls 200g", "盒", 16.0),
            ("山楂条 200g", "Hawthorn strips 200g", "袋", 9.0),
            ("口香糖 40粒", "Chewing gum x40", "瓶", 12.0),
            ("卤味鸭脖 180g", "Braised duck neck 180g", "袋", 19.9),
            ("爆米花 100g", "Popcorn 100g", "袋", 8.0),
            ("夹心饼干 388g", "Sandwich cookies 388g", "袋", 13.5),
            ("鱿鱼丝 80g", "Shredded squid 80g", "袋", 16.0),
        ),
    ),
    "粮油调味": (
        (300, 540),
        30,
        (
            ("东北大米 5kg", "Northeast rice 5kg", "袋", 45.0),
            ("花生油 1.8L", "Peanut oil 1.8L", "桶", 42.0),
            ("生抽 500ml", "Light soy sauce 500ml", "瓶", 9.9),
            ("老抽 500ml", "Dark soy sauce 500ml", "瓶", 10.5),
            ("香醋 500ml", "Black vinegar 500ml", "瓶", 8.5),
            ("挂面 1kg", "Dried noodles 1kg", "袋", 9.9),
            ("方便面 红烧牛肉 5连包", "Instant noodles beef x5", "组", 14.5),
            ("火锅底料 200g", "Hotpot base 200g", "袋", 15.9),
            ("蚝油 510g", "Oyster sauce 510g", "瓶", 12.9),
            ("食用盐 400g", "Salt 400g", "袋", 3.0),
            ("白砂糖 500g", "White sugar 500g", "袋", 6.5),
            ("老干妈辣酱 280g", "Chilli crisp 280g", "瓶", 11.5),
        ),
    ),
    "日化": (
        None,
        0,
        (
            ("洗衣液 2kg", "Laundry liquid 2kg", "瓶", 39.9),
            ("洗洁精 1.5kg", "Dish soap 1.5kg", "瓶", 15.9),
            ("抽纸 3层 10包", "Facial tissue x10", "提", 29.9),
            ("卷纸 4层 10卷", "Toilet rolls x10", "提", 32.9),
            ("湿巾 80抽", "Wet wipes 80", "包", 12.9),
            ("垃圾袋 3卷", "Bin bags x3", "组", 9.9),
            ("保鲜膜 30m", "Cling film 30m", "卷", 12.5),
            ("消毒液 1L", "Disinfectant 1L", "瓶", 19.9),
            ("厨房纸 2卷", "Kitchen paper x2", "组", 11.9),
            ("衣物柔顺剂 1L", "Fabric softener 1L", "瓶", 24.9),
            ("一次性手套 100只", "Disposable gloves x100", "盒", 9.9),
            ("电池 5号 4节", "AA batteries x4", "卡", 15.0),
        ),
    ),
    "个护": (
        (730, 1095),
        60,
        (
            ("洗发水 500ml", "Shampoo 500ml", "瓶", 45.0),
            ("沐浴露 750ml", "Shower gel 750ml", "瓶", 39.9),
            ("牙膏 120g", "Toothpaste 120g", "支", 12.9),
            ("牙刷 软毛 2支", "Toothbrushes x2", "组", 15.9),
            ("洗面奶 100g", "Face wash 100g", "支", 35.0),
            ("护手霜 50g", "Hand cream 50g", "支", 19.9),
            ("卫生巾 日用 10片", "Sanitary pads x10", "包", 16.9),
            ("剃须刀片 4片", "Razor blades x4", "盒", 49.0),
            ("漱口水 500ml", "Mouthwash 500ml", "瓶", 29.9),
            ("洗手液 300ml", "Hand soap 300ml", "瓶", 14.9),
            ("婴儿纸尿裤 L 50片", "Baby diapers L x50", "包", 89.0),
            ("防晒霜 50ml", "Sunscreen 50ml", "支", 59.0),
        ),
    ),
    "母婴": (
        (365, 720),
        45,
        (
            ("婴儿配方奶粉 1段 800g", "Infant formula stage 1 800g", "罐", 268.0),
            ("婴儿配方奶粉 2段 800g", "Follow-on formula stage 2 800g", "罐", 258.0),
            ("幼儿成长奶粉 3段 800g", "Growing-up milk stage 3 800g", "罐", 228.0),
            ("婴儿米粉 250g", "Baby rice cereal 250g", "盒", 45.0),
            ("果泥 苹果 100g", "Apple puree 100g", "袋", 9.9),
            ("儿童磨牙饼干 60g", "Teething biscuits 60g", "盒", 19.9),
            ("儿童酸奶溶豆 18g", "Yoghurt melts 18g", "袋", 16.0),
            ("婴儿湿巾 80抽×3", "Baby wipes 80 x3", "组", 29.9),
            ("儿童牙膏 50g", "Kids toothpaste 50g", "支", 18.0),
            ("宝宝面条 200g", "Baby noodles 200g", "盒", 21.0),
            ("婴儿洗衣液 1L", "Baby laundry liquid 1L", "瓶", 39.0),
            ("儿童水杯 350ml", "Kids water bottle 350ml", "个", 49.0),
        ),
    ),
    "酒类": (
        None,
        0,
        (
            ("绍兴黄酒 五年陈 500ml", "Shaoxing rice wine 5y 500ml", "瓶", 28.0),
            ("绍兴黄酒 花雕 600ml", "Huadiao rice wine 600ml", "瓶", 22.0),
            ("白酒 浓香型 52度 500ml", "Baijiu strong aroma 500ml", "瓶", 168.0),
            ("白酒 清香型 42度 500ml", "Baijiu light aroma 500ml", "瓶", 58.0),
            ("干红葡萄酒 750ml", "Dry red wine 750ml", "瓶", 89.0),
            ("米酒 500ml", "Sweet rice wine 500ml", "瓶", 12.0),
            ("梅子酒 330ml", "Plum wine 330ml", "瓶", 39.0),
            ("啤酒 小麦 500ml×12", "Wheat beer 500ml x12", "箱", 79.0),
            ("预调鸡尾酒 330ml", "Premixed cocktail 330ml", "罐", 9.9),
            ("二锅头 56度 500ml", "Erguotou 56% 500ml", "瓶", 25.0),
            ("起泡酒 750ml", "Sparkling wine 750ml", "瓶", 99.0),
            ("桂花酒 500ml", "Osmanthus wine 500ml", "瓶", 36.0),
            ("清酒 720ml", "Sake 720ml", "瓶", 88.0),
        ),
    ),
}

#: categories whose baskets go together (for sku_affinity beyond the own category)
COMPLEMENTS: dict[str, tuple[str, ...]] = {
    "乳制品": ("烘焙", "零食", "生鲜"),
    "烘焙": ("乳制品", "饮料"),
    "生鲜": ("粮油调味", "乳制品", "饮料"),
    "冷冻": ("饮料", "粮油调味"),
    "饮料": ("零食", "烘焙", "冷冻"),
    "零食": ("饮料", "乳制品"),
    "粮油调味": ("生鲜", "冷冻"),
    "日化": ("个护",),
    "个护": ("日化", "母婴"),
    "母婴": ("个护", "乳制品"),
    "酒类": ("零食", "生鲜"),
}

#: Chinese public holidays (法定节假日, the official day-off spans; make-up workdays ignored).
HOLIDAYS: tuple[tuple[str, str, str], ...] = (
    ("2025-01-01", "2025-01-01", "元旦"),
    ("2025-01-28", "2025-02-04", "春节"),
    ("2025-04-04", "2025-04-06", "清明节"),
    ("2025-05-01", "2025-05-05", "劳动节"),
    ("2025-05-31", "2025-06-02", "端午节"),
    ("2025-10-01", "2025-10-05", "国庆节"),
    ("2025-10-06", "2025-10-06", "中秋节"),
    ("2025-10-07", "2025-10-08", "国庆节"),
    ("2026-01-01", "2026-01-03", "元旦"),
    ("2026-02-15", "2026-02-23", "春节"),
    ("2026-04-04", "2026-04-06", "清明节"),
    ("2026-05-01", "2026-05-05", "劳动节"),
    ("2026-06-19", "2026-06-21", "端午节"),
    ("2026-09-25", "2026-09-27", "中秋节"),
    ("2026-10-01", "2026-10-07", "国庆节"),
    ("2027-01-01", "2027-01-03", "元旦"),
    ("2027-02-05", "2027-02-11", "春节"),
    ("2027-04-03", "2027-04-05", "清明节"),
    ("2027-05-01", "2027-05-05", "劳动节"),
    ("2027-06-09", "2027-06-11", "端午节"),
    ("2027-09-15", "2027-09-17", "中秋节"),
    ("2027-10-01", "2027-10-07", "国庆节"),
)
