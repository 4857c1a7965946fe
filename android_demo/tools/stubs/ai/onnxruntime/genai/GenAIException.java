// Stub for compile-checking only (android_demo/tools/check.sh): signatures of
// com.microsoft.onnxruntime:onnxruntime-genai-android 0.18.0, as in microsoft/onnxruntime-genai
// src/java/src/main/java/ai/onnxruntime/genai/GenAIException.java (read at commit 5cdc7ee8c283bc6b1c7df43c2ff18faf88e40f1f). No behaviour.
package ai.onnxruntime.genai;

public class GenAIException extends Exception {
    public GenAIException(String message) { super(message); }
    public GenAIException(String message, Exception innerException) { super(message, innerException); }
}
