#!/bin/sh
# make android-check: what can be checked of the app without Google's Maven (so without Gradle, an
# android.jar or an APK): aapt over the manifest and resources, javac -Werror of every source against
# the stubs in tools/stubs (the signatures of the Android, ExecuTorch and ONNX Runtime GenAI APIs the
# app calls, at the versions pinned in app/build.gradle), then the JVM unit tests of the Android-free
# classes. EDGELLAMA_TEST_BUNDLES=DIR hands the unit tests bundles made by `edgellama bundle`
# (tests/test_android.py does). APP_DIR=... checks another copy of the app (the same test uses it).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
APP=${APP_DIR:-$HERE/../app}
OUT=${CHECK_OUT:-$HERE/../build/check}
FRAMEWORK=/usr/share/android-framework-res/framework-res.apk
JSON=/usr/share/java/com.android.json.jar
JUNIT=/usr/share/java/junit4.jar:/usr/share/java/hamcrest-core.jar
PACKAGES="adb aapt android-framework-res junit4 libandroid-json-java"

missing=""
for p in $PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    echo "android-check: installing$missing"
    if ! apt-get install -y --no-install-recommends $missing >/dev/null 2>&1; then
        apt-get update >/dev/null && apt-get install -y --no-install-recommends $missing >/dev/null
    fi
fi

rm -rf "$OUT" && mkdir -p "$OUT/gen" "$OUT/stubs" "$OUT/classes" "$OUT/test-classes"
# aapt v1 wants the package in the manifest; AGP 8 wants it only in build.gradle (namespace).
sed 's|<manifest |<manifest package="org.edgellama.demo" |' "$APP/src/main/AndroidManifest.xml" > "$OUT/AndroidManifest.xml"
aapt package -f -m -J "$OUT/gen" -M "$OUT/AndroidManifest.xml" -S "$APP/src/main/res" -I "$FRAMEWORK"

javac --release 8 -nowarn -d "$OUT/stubs" $(find "$HERE/stubs" -name '*.java')
javac --release 8 -Xlint:all -Xlint:-options -Werror -cp "$OUT/stubs:$JSON" -d "$OUT/classes" \
    $(find "$APP/src/main/java" "$OUT/gen" -name '*.java')
javac --release 8 -Xlint:all -Xlint:-options -Werror -cp "$OUT/classes:$JSON:$JUNIT" -d "$OUT/test-classes" \
    $(find "$APP/src/test/java" -name '*.java')
TESTS=$(cd "$APP/src/test/java" && find . -name '*Test.java' | sed 's|^\./||; s|\.java$||; s|/|.|g' | sort)
java -Dedgellama.testBundles="${EDGELLAMA_TEST_BUNDLES:-}" -cp "$OUT/classes:$OUT/test-classes:$JSON:$JUNIT" \
    org.junit.runner.JUnitCore $TESTS
