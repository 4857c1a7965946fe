// Stub for compile-checking only (android_demo/tools/check.sh): signatures of
// org.pytorch:executorch-android 1.5.1, as in pytorch/executorch
// extension/android/executorch_android/src/main/java/org/pytorch/executorch/extension/llm/LlmModule.java (read at commit 015a6ab78f7f9c80e1d3970b83b583d6de9f8557);
// load()/generate() return int there (up to 1.2; from 1.3.1 they throw ExecutorchRuntimeException,
// a RuntimeException, which the app also catches). No behaviour.
package org.pytorch.executorch.extension.llm;

public class LlmModule {
    public LlmModule(String modulePath, String tokenizerPath, float temperature) { throw new UnsupportedOperationException("stub"); }
    public LlmModule(String modulePath, String tokenizerPath, float temperature, String dataPath) { throw new UnsupportedOperationException("stub"); }
    public int generate(String prompt, LlmCallback llmCallback) { throw new UnsupportedOperationException("stub"); }
    public int generate(String prompt, int seqLen, LlmCallback llmCallback) { throw new UnsupportedOperationException("stub"); }
    public int generate(String prompt, int seqLen, LlmCallback llmCallback, boolean echo) { throw new UnsupportedOperationException("stub"); }
    public native void resetContext();
    public native void stop();
    public native int load();
    public void resetNative() { throw new UnsupportedOperationException("stub"); }
}
