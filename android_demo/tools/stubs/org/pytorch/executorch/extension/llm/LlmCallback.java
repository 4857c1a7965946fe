// Stub for compile-checking only (android_demo/tools/check.sh): signatures of
// org.pytorch:executorch-android 1.5.1, as in pytorch/executorch
// extension/android/executorch_android/src/main/java/org/pytorch/executorch/extension/llm/LlmCallback.java (read at commit 54c87e69f1b6918710a3d87917bbf1a04b10ace1);
// load()/generate() return int there (up to 1.2; from 1.3.1 they throw ExecutorchRuntimeException,
// a RuntimeException, which the app also catches). No behaviour.
package org.pytorch.executorch.extension.llm;

public interface LlmCallback {
    void onResult(String result);

    default void onStats(String stats) {}

    default void onError(int errorCode, String message) {}
}
