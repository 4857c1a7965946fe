// Stub for compile-checking only (android_demo/tools/check.sh): signatures of
// com.microsoft.onnxruntime:onnxruntime-genai-android 0.18.0, as in microsoft/onnxruntime-genai
// src/java/src/main/java/ai/onnxruntime/genai/Model.java (read at commit 02b3780a6d51c3b0c8d08f3de50cf2e23dc7f93f). No behaviour.
package ai.onnxruntime.genai;

public final class Model implements AutoCloseable {
    public Model(String modelPath) throws GenAIException { throw new UnsupportedOperationException("stub"); }
    public Tokenizer createTokenizer() throws GenAIException { throw new UnsupportedOperationException("stub"); }
    public GeneratorParams createGeneratorParams() throws GenAIException { throw new UnsupportedOperationException("stub"); }
    @Override
    public void close() { throw new UnsupportedOperationException("stub"); }
}
