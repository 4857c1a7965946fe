// Stub for compile-checking only (android_demo/tools/check.sh): signatures of
// org.pytorch:executorch-android 1.5.1, as in pytorch/executorch
// extension/android/executorch_android/src/main/java/org/pytorch/executorch/ExecuTorchRuntime.java (read at commit 00f160747f2af1a945725fc564552f891e6a4099);
// load()/generate() return int there (up to 1.2; from 1.3.1 they throw ExecutorchRuntimeException,
// a RuntimeException, which the app also catches). No behaviour.
package org.pytorch.executorch;

public class ExecuTorchRuntime {
    public static ExecuTorchRuntime getRuntime() { throw new UnsupportedOperationException("stub"); }
    public static native String[] getRegisteredOps();
    public static native String[] getRegisteredBackends();
}
