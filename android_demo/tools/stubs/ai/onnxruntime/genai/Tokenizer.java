// Stub for compile-checking only (android_demo/tools/check.sh): signatures of
// com.microsoft.onnxruntime:onnxruntime-genai-android 0.18.0, as in microsoft/onnxruntime-genai
// src/java/src/main/java/ai/onnxruntime/genai/Tokenizer.java (read at commit 10932c11a65addce37a4d86867a3fbca23f3d152). No behaviour.
package ai.onnxruntime.genai;

public class Tokenizer implements AutoCloseable {
    public Tokenizer(Model model) throws GenAIException { throw new UnsupportedOperationException("stub"); }
    public Sequences encode(String string) throws GenAIException { throw new UnsupportedOperationException("stub"); }
    public String decode(int[] sequence) throws GenAIException { throw new UnsupportedOperationException("stub"); }
    public TokenizerStream createStream() throws GenAIException { throw new UnsupportedOperationException("stub"); }
    @Override
    public void close() { throw new UnsupportedOperationException("stub"); }
}
