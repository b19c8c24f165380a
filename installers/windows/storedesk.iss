; StoreDesk for Windows: per-user installer (Inno Setup 6.3 or later), no admin rights.
;
; Build (on Windows, after the PyInstaller bundle exists):
;   uv run python installers\build.py --installer
; which runs, with the values filled in:
;   ISCC /DAppVersion=0.1.0 /DBundleDir=<repo>\dist\storedesk /DIconFile=<ico> /O<repo>\dist installers\windows\storedesk.iss
;
; The file is UTF-8 with a BOM (Inno Setup reads non-ASCII scripts only as UTF-8).
; Decisions (checked against the Inno Setup 6 help, jrsoftware.org/ishelp):
; * PrivilegesRequired=lowest: Setup never asks for elevation and always runs in
;   non administrative install mode, so {autopf} is {userpf} = %LOCALAPPDATA%\Programs and
;   {autoprograms} is the user's Start menu; uninstall info goes to HKCU. A back-office PC
;   where the manager is not an administrator can install and update StoreDesk.
;   PrivilegesRequiredOverridesAllowed=commandline lets IT deploy for all users with
;   /ALLUSERS (then {autopf} is Program Files and the UAC prompt appears).
; * The user's data is NOT in {app}: StoreDesk keeps its cache, settings, tile cache and
;   logs in %LOCALAPPDATA%\StoreDesk\StoreDesk (platformdirs, appauthor\appname). The
;   uninstaller removes the program files and asks, defaulting to No, whether to remove
;   that data too; a silent uninstall (/SILENT, /VERYSILENT or /SUPPRESSMSGBOXES) keeps it.
; * 64-bit only (the bundle is built by 64-bit Python); x64compatible also installs on
;   Windows 11 on Arm, which runs x64 programs under emulation.

#ifndef AppVersion
#define AppVersion "0.1.0"
#endif
#ifndef BundleDir
#define BundleDir "..\..\dist\storedesk"
#endif
#define AppName "StoreDesk"
#define AppExe "StoreDesk.exe"

[Setup]
; A fixed AppId ties upgrades and the uninstaller together; never change it.
AppId={{6B1F3C2E-4D7A-4F5B-9C3E-2A8D5E7F1B40}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=StoreDesk
VersionInfoVersion={#AppVersion}
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=commandline
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputBaseFilename={#AppName}-{#AppVersion}-setup
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName} {#AppVersion}
#ifdef IconFile
SetupIconFile={#IconFile}
#endif
; StoreDesk must not be running while its files are replaced or removed.
CloseApplications=yes
RestartApplications=no
ShowLanguageDialog=auto

[Languages]
Name: "en"; MessagesFile: "compiler:Default.isl"
; Simplified Chinese is not one of Inno Setup 6's official translations: copy the
; maintained ChineseSimplified.isl (jrsoftware.org/files/istrans/, kept current by
; github.com/kira-96/Inno-Setup-Chinese-Simplified-Translation) into Inno Setup's
; Languages folder on the build machine. Without it the installer is built English-only.
#if FileExists(AddBackslash(CompilerPath) + "Languages\ChineseSimplified.isl")
#define HaveChinese
Name: "zh"; MessagesFile: "compiler:Languages\ChineseSimplified.isl"
#else
#pragma warning "ChineseSimplified.isl not found: the installer will be English only"
#endif

[CustomMessages]
en.RemoveDataQuestion=Also remove your StoreDesk data from this PC?%n%nThis deletes the local data file (including changes not yet synchronised), your settings, the downloaded map tiles and the logs in:%n%1%n%nChoose No to keep them (for example when you reinstall or upgrade).
en.RemoveDataFailed=Some of your StoreDesk data could not be removed. You can delete this folder yourself:%n%1
en.LaunchAfter=Start StoreDesk now
#ifdef HaveChinese
zh.RemoveDataQuestion=是否同时删除此电脑上的 StoreDesk 数据？%n%n将删除本地数据文件（包括尚未同步的修改）、设置、已下载的地图瓦片和日志，位置：%n%1%n%n如需保留（例如重新安装或升级），请选择“否”。
zh.RemoveDataFailed=部分 StoreDesk 数据未能删除，您可以手动删除此文件夹：%n%1
zh.LaunchAfter=立即启动 StoreDesk
#endif

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; The whole PyInstaller one-folder bundle (StoreDesk.exe, storedesk-cli.exe, _internal\).
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{app}"; AppUserModelID: "StoreDesk.StoreDesk"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{app}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchAfter}"; Flags: nowait postinstall skipifsilent

[Code]
{ Where StoreDesk keeps the user's data: platformdirs.user_data_dir("StoreDesk",
  "StoreDesk") = %LOCALAPPDATA%\StoreDesk\StoreDesk (config, cache and logs live inside). }
function UserDataDir(): String;
begin
  Result := ExpandConstant('{localappdata}\StoreDesk\StoreDesk');
end;

{ A custom message with %n turned into line breaks and %1 filled in. }
function StoreDeskMsg(const Name, Arg: String): String;
begin
  Result := CustomMessage(Name);
  StringChangeEx(Result, '%n', #13#10, True);
  Result := FmtMessage(Result, [Arg]);
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Dir: String;
begin
  { After the program files are gone: ask, default No. A silent uninstall keeps the data:
    SuppressibleMsgBox returns the default (IDNO) under /SUPPRESSMSGBOXES. }
  if CurUninstallStep <> usPostUninstall then
    Exit;
  Dir := UserDataDir();
  if UninstallSilent() or not DirExists(Dir) then
    Exit;
  if SuppressibleMsgBox(StoreDeskMsg('RemoveDataQuestion', Dir),
       mbConfirmation, MB_YESNO or MB_DEFBUTTON2, IDNO) = IDYES then
  begin
    if not DelTree(Dir, True, True, True) then
      SuppressibleMsgBox(StoreDeskMsg('RemoveDataFailed', Dir),
        mbError, MB_OK, IDOK)
    else
      RemoveDir(ExpandConstant('{localappdata}\StoreDesk'));  { only if now empty }
  end;
end;
