// Stub for compile-checking only (android_demo/tools/check.sh): the signatures of the Android API
// (API level 28+, developer.android.com/reference/android/widget/ListView) that the app calls; no behaviour.
package android.widget;

import android.content.Context;

public class ListView extends AdapterView<ListAdapter> {
    public ListView(Context context) { super(context); }
    public void setAdapter(ListAdapter adapter) { throw new UnsupportedOperationException("stub"); }
}
