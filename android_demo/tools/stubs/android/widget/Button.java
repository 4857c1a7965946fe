// Stub for compile-checking only (android_demo/tools/check.sh): the signatures of the Android API
// (API level 28+, developer.android.com/reference/android/widget/Button) that the app calls; no behaviour.
package android.widget;

import android.content.Context;

public class Button extends TextView {
    public Button(Context context) { super(context); }
}
