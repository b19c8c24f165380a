#!/bin/sh
# Sign StoreDesk.app (inside-out, hardened runtime), notarise it and staple the ticket.
#   installers/macos/sign_and_notarize.sh "Developer ID Application: Example Ltd (TEAMID)" storedesk-notary
# The second argument is a notarytool keychain profile, created once with
#   xcrun notarytool store-credentials storedesk-notary --apple-id ... --team-id ...
set -eu
IDENTITY=${1:?signing identity}
PROFILE=${2:?notarytool keychain profile}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
APP=${APP:-$ROOT/dist/StoreDesk.app}
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/desktop/__init__.py")

sign() {  # sign [entitlements] path
    if [ $# -eq 2 ]; then
        codesign --force --timestamp --options runtime --entitlements "$1" --sign "$IDENTITY" "$2"
    else
        codesign --force --timestamp --options runtime --sign "$IDENTITY" "$1"
    fi
}

echo "1. libraries and extension modules"
find "$APP/Contents" -type f \( -name '*.dylib' -o -name '*.so' \) -print | while read -r f; do sign "$f"; done

echo "2. QtWebEngineProcess helper (with its own entitlement)"
find "$APP/Contents" -type d -name 'QtWebEngineProcess.app' -print | while read -r h; do
    sign "$HERE/QtWebEngineProcess.entitlements.plist" "$h"
done

echo "3. Qt frameworks (deepest first)"
find "$APP/Contents" -type d -name '*.framework' -print | awk '{ print length, $0 }' | sort -rn \
    | cut -d' ' -f2- | while read -r fw; do sign "$fw"; done

echo "4. executables and the app"
sign "$HERE/entitlements.plist" "$APP/Contents/MacOS/storedesk-cli"
sign "$HERE/entitlements.plist" "$APP/Contents/MacOS/StoreDesk"
sign "$HERE/entitlements.plist" "$APP"
codesign --verify --deep --strict --verbose=2 "$APP"

echo "5. smoke test of the signed app"
"$APP/Contents/MacOS/storedesk-cli" --self-check

echo "6. notarise and staple"
ZIP="$ROOT/dist/StoreDesk-$VERSION-macos.zip"
ditto -c -k --keepParent "$APP" "$ZIP"
xcrun notarytool submit "$ZIP" --keychain-profile "$PROFILE" --wait
xcrun stapler staple "$APP"
spctl --assess --type execute --verbose=4 "$APP"

echo "7. disk image"
DMG="$ROOT/dist/StoreDesk-$VERSION.dmg"
hdiutil create -volname StoreDesk -srcfolder "$APP" -ov -format UDZO "$DMG"
codesign --timestamp --sign "$IDENTITY" "$DMG"
xcrun notarytool submit "$DMG" --keychain-profile "$PROFILE" --wait
xcrun stapler staple "$DMG"
echo "done: $DMG"
