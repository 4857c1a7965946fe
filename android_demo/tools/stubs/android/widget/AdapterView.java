// Stub for compile-checking only (android_demo/tools/check.sh): the signatures of the Android API
// (API level 28+, developer.android.com/reference/android/widget/AdapterView) that the app calls; no behaviour.
package android.widget;

import android.content.Context;
import android.view.View;

public abstract class AdapterView<T> extends View {
    public interface OnItemClickListener {
        void onItemClick(AdapterView<?> parent, View view, int position, long id);
    }

    public AdapterView(Context context) { super(context); }
    public void setOnItemClickListener(OnItemClickListener listener) { throw new UnsupportedOperationException("stub"); }
}
