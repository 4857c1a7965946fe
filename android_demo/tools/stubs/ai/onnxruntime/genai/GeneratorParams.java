// Stub for compile-checking only (android_demo/tools/check.sh): signatures of
// com.microsoft.onnxruntime:onnxruntime-genai-android 0.18.0, as in microsoft/onnxruntime-genai
// src/java/src/main/java/ai/onnxruntime/genai/GeneratorParams.java (read at commit 06f67036df24e369d65475634c2245fe5aff3ea4). No behaviour.
package ai.onnxruntime.genai;

public final class GeneratorParams implements AutoCloseable {
    public GeneratorParams(Model model) throws GenAIException { throw new UnsupportedOperationException("stub"); }
    public void setSearchOption(String optionName, double value) throws GenAIException { throw new UnsupportedOperationException("stub"); }
    public void setSearchOption(String optionName, boolean value) throws GenAIException { throw new UnsupportedOperationException("stub"); }
    @Override
    public void close() { throw new UnsupportedOperationException("stub"); }
}
