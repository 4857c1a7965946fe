// Stub for compile-checking only (android_demo/tools/check.sh): signatures of
// com.microsoft.onnxruntime:onnxruntime-genai-android 0.18.0, as in microsoft/onnxruntime-genai
// src/java/src/main/java/ai/onnxruntime/genai/Sequences.java (read at commit 3b7c7fe14641da39ba3c43320967c6b17e4a9017). No behaviour.
package ai.onnxruntime.genai;

public final class Sequences implements AutoCloseable {
    Sequences(long sequencesHandle) { throw new UnsupportedOperationException("stub"); }
    public long numSequences() { throw new UnsupportedOperationException("stub"); }
    public int[] getSequence(long sequenceIndex) { throw new UnsupportedOperationException("stub"); }
    @Override
    public void close() { throw new UnsupportedOperationException("stub"); }
}
