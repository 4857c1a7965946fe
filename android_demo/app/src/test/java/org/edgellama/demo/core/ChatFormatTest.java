package org.edgellama.demo.core;

import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class ChatFormatTest {
    private final ChatFormat chatml = new ChatFormat(
            "<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n",
            "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n");

    @Test
    public void rendersTheUserMessageAlone() {
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", chatml.render("", "Hi"));
        assertEquals(chatml.render(null, "Hi"), chatml.render("", "Hi"));
    }

    @Test
    public void rendersSystemThenUser() {
        assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                chatml.render("Be brief.", "Hi"));
    }

    @Test
    public void placeholdersInsideMessagesStayAsWritten() {
        ChatFormat llama2 = new ChatFormat("[INST] {user} [/INST]", "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]");
        assertEquals("[INST] say {user} and {system} [/INST]", llama2.render("", "say {user} and {system}"));
        assertEquals("[INST] <<SYS>>\n{user}\n<</SYS>>\n\nx [/INST]", llama2.render("{user}", "x"));
    }
}
