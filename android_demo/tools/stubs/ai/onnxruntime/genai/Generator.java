// Stub for compile-checking only (android_demo/tools/check.sh): signatures of
// com.microsoft.onnxruntime:onnxruntime-genai-android 0.18.0, as in microsoft/onnxruntime-genai
// src/java/src/main/java/ai/onnxruntime/genai/Generator.java (read at commit 16157c04e177eb4042758c8cf24b9d4f3a4f9a46). No behaviour.
package ai.onnxruntime.genai;

public final class Generator implements AutoCloseable {
    public Generator(Model model, GeneratorParams generatorParams) throws GenAIException { throw new UnsupportedOperationException("stub"); }
    public boolean isDone() { throw new UnsupportedOperationException("stub"); }
    public void appendTokens(int[] inputIDs) throws GenAIException { throw new UnsupportedOperationException("stub"); }
    public void appendTokenSequences(Sequences sequences) throws GenAIException { throw new UnsupportedOperationException("stub"); }
    public void generateNextToken() throws GenAIException { throw new UnsupportedOperationException("stub"); }
    public int[] getSequence(long sequenceIndex) throws GenAIException { throw new UnsupportedOperationException("stub"); }
    public int getLastTokenInSequence(long sequenceIndex) throws GenAIException { throw new UnsupportedOperationException("stub"); }
    @Override
    public void close() { throw new UnsupportedOperationException("stub"); }
}
