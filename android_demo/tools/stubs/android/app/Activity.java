// Stub for compile-checking only (android_demo/tools/check.sh): the signatures of the Android API
// (API level 28+, developer.android.com/reference/android/app/Activity) that the app calls; no behaviour.
package android.app;

import android.content.Context;
import android.content.Intent;
import android.os.Bundle;
import android.view.View;

public class Activity extends Context {
    protected void onCreate(Bundle savedInstanceState) { throw new UnsupportedOperationException("stub"); }
    protected void onDestroy() { throw new UnsupportedOperationException("stub"); }
    public void setContentView(int layoutResID) { throw new UnsupportedOperationException("stub"); }
    public <T extends View> T findViewById(int id) { throw new UnsupportedOperationException("stub"); }
    public Intent getIntent() { throw new UnsupportedOperationException("stub"); }
    public final void runOnUiThread(Runnable action) { throw new UnsupportedOperationException("stub"); }
    public void setTitle(CharSequence title) { throw new UnsupportedOperationException("stub"); }
    public void finish() { throw new UnsupportedOperationException("stub"); }
}
