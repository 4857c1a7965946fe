// Stub for compile-checking only (android_demo/tools/check.sh): the signatures of the Android API
// (API level 28+, developer.android.com/reference/android/widget/ScrollView) that the app calls; no behaviour.
package android.widget;

import android.content.Context;
import android.view.View;

public class ScrollView extends View {
    public ScrollView(Context context) { super(context); }
    public boolean fullScroll(int direction) { throw new UnsupportedOperationException("stub"); }
}
