// Stub for compile-checking only (android_demo/tools/check.sh): the signatures of the Android API
// (API level 28+, developer.android.com/reference/android/view/View) that the app calls; no behaviour.
package android.view;

import android.content.Context;

public class View {
    public static final int VISIBLE = 0;
    public static final int GONE = 8;
    public static final int FOCUS_DOWN = 130;

    public interface OnClickListener {
        void onClick(View v);
    }

    public View(Context context) { throw new UnsupportedOperationException("stub"); }
    public void setOnClickListener(OnClickListener l) { throw new UnsupportedOperationException("stub"); }
    public void setEnabled(boolean enabled) { throw new UnsupportedOperationException("stub"); }
    public void setVisibility(int visibility) { throw new UnsupportedOperationException("stub"); }
    public boolean post(Runnable action) { throw new UnsupportedOperationException("stub"); }
}
