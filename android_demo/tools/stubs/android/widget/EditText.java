// Stub for compile-checking only (android_demo/tools/check.sh): the signatures of the Android API
// (API level 28+, developer.android.com/reference/android/widget/EditText) that the app calls; no behaviour.
package android.widget;

import android.content.Context;
import android.text.Editable;

public class EditText extends TextView {
    public EditText(Context context) { super(context); }
    @Override
    public Editable getText() { throw new UnsupportedOperationException("stub"); }
}
