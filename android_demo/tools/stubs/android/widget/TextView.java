// Stub for compile-checking only (android_demo/tools/check.sh): the signatures of the Android API
// (API level 28+, developer.android.com/reference/android/widget/TextView) that the app calls; no behaviour.
package android.widget;

import android.content.Context;
import android.view.View;

public class TextView extends View {
    public TextView(Context context) { super(context); }
    public void setText(CharSequence text) { throw new UnsupportedOperationException("stub"); }
    public void setText(int resid) { throw new UnsupportedOperationException("stub"); }
    public final void append(CharSequence text) { throw new UnsupportedOperationException("stub"); }
    public CharSequence getText() { throw new UnsupportedOperationException("stub"); }
}
