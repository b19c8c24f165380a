#!/bin/sh
# Install (or with --uninstall remove) this StoreDesk bundle for the current user, no root:
#   bundle   -> ~/.local/opt/storedesk/
#   command  -> ~/.local/bin/storedesk (symlink)
#   menu     -> ~/.local/share/applications/storedesk.desktop
#   icon     -> ~/.local/share/icons/hicolor/256x256/apps/storedesk.png
# The user's data (~/.local/share/StoreDesk, settings, tile cache) is kept on uninstall
# unless --purge is given as well.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data_home=${XDG_DATA_HOME:-$HOME/.local/share}
target=$HOME/.local/opt/storedesk
bin=$HOME/.local/bin
apps=$data_home/applications
icons=$data_home/icons/hicolor/256x256/apps

if [ "${1:-}" = "--uninstall" ]; then
    rm -rf "$target"
    rm -f "$bin/storedesk" "$apps/storedesk.desktop" "$icons/storedesk.png"
    if [ "${2:-}" = "--purge" ]; then
        rm -rf "$data_home/StoreDesk" "${XDG_CONFIG_HOME:-$HOME/.config}/StoreDesk" \
            "${XDG_CACHE_HOME:-$HOME/.cache}/StoreDesk" "${XDG_STATE_HOME:-$HOME/.local/state}/StoreDesk"
        echo "StoreDesk and its data removed."
    else
        echo "StoreDesk removed; your data in $data_home/StoreDesk was kept (--uninstall --purge removes it)."
    fi
    command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$apps" || true
    exit 0
fi

[ -x "$here/storedesk" ] || { echo "install.sh: run it from inside the StoreDesk bundle folder" >&2; exit 1; }
mkdir -p "$target" "$bin" "$apps" "$icons"
if [ "$here" != "$target" ]; then
    rm -rf "$target"
    cp -a "$here" "$target"
fi
ln -sf "$target/storedesk" "$bin/storedesk"
cp "$here/storedesk.png" "$icons/storedesk.png"
sed -e "s|^Exec=.*|Exec=$target/storedesk|" -e "s|^TryExec=.*|TryExec=$target/storedesk|" \
    "$here/storedesk.desktop" > "$apps/storedesk.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$apps" || true
echo "StoreDesk installed in $target; start it from the applications menu or with $bin/storedesk"
