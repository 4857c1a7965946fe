// Stub for compile-checking only (android_demo/tools/check.sh): the signatures of the Android API
// (API level 28+, developer.android.com/reference/android/widget/ArrayAdapter) that the app calls; no behaviour.
package android.widget;

import android.content.Context;
import java.util.List;

public class ArrayAdapter<T> implements ListAdapter {
    public ArrayAdapter(Context context, int resource, List<T> objects) { throw new UnsupportedOperationException("stub"); }
    public void notifyDataSetChanged() { throw new UnsupportedOperationException("stub"); }
}
