package org.edgellama.demo.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import org.junit.Test;

public class BundleManifestTest {
    static final String JSON = "{\"format_version\":1,\"name\":\"tiny\",\"created\":\"2026-12-01T15:00:00Z\","
            + "\"producer\":\"edgellama 0.1.0\",\"model\":{\"name\":\"meta\",\"source_sha256\":\"" + zeros() + "\","
            + "\"source_format\":\"meta\",\"bos_id\":1,\"eos_ids\":[2],\"add_bos\":true,\"context_length\":160,"
            + "\"chat_template\":null,\"chat_format\":{\"user\":\"[INST] {user} [/INST]\","
            + "\"system_user\":\"[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST]\"}},"
            + "\"generation\":{\"temperature\":0.0,\"max_new_tokens\":128,\"system_prompt\":\"\"},"
            + "\"files\":[{\"path\":\"executorch/model.pte\",\"bytes\":3,\"sha256\":\"" + zeros() + "\"}],"
            + "\"runtimes\":[{\"type\":\"executorch\",\"folder\":\"executorch\",\"model_file\":\"model.pte\","
            + "\"tokenizer_file\":\"tokenizer.model\",\"backend\":\"xnnpack\",\"quantization\":{\"scheme\":\"8da4w\","
            + "\"group_size\":32},\"recipe\":\"xnnpack-8da4w\",\"threads\":0,\"max_seq_len\":32,\"max_context_len\":160,"
            + "\"portable_ops\":[\"llama::custom_sdpa.out\"],\"parity\":{\"verdict\":\"PASS\",\"created\":\"x\","
            + "\"references\":{\"twin\":{\"top1_agreement\":0.99,\"kl_mean\":0.001,\"ppl_ratio\":1.0}}}}]}";

    static String zeros() {
        return new String(new char[64]).replace('\0', '0');
    }

    static BundleManifest manifest() throws ManifestException {
        return BundleManifest.parse(JSON);
    }

    @Test
    public void readsEveryPart() throws Exception {
        BundleManifest m = manifest();
        assertEquals("tiny", m.name);
        assertEquals(160, m.contextLength);
        assertEquals(1, m.bosId);
        assertEquals(2, (int) m.eosIds.get(0));
        assertNull(m.chatTemplate);
        assertEquals("[INST] hi [/INST]", m.chatFormat.render(m.systemPrompt, "hi"));
        assertEquals(1, m.files.size());
        RuntimeEntry e = m.runtimes.get(0);
        assertEquals("executorch · xnnpack · 8da4w g32", e.label());
        assertEquals("llama::custom_sdpa.out", e.portableOps.get(0));
        assertEquals("PASS", e.parityVerdict);
        assertTrue(e.parityReferences.get("twin").startsWith("top-1 0.990"));
        assertNull(e.dataFile);
    }

    @Test
    public void otherFormatVersionsAreRefused() {
        try {
            BundleManifest.parse(JSON.replace("\"format_version\":1", "\"format_version\":2"));
            fail();
        } catch (ManifestException ex) {
            assertTrue(ex.getMessage(), ex.getMessage().contains("format_version 2"));
        }
    }

    @Test
    public void aMissingFieldIsNamed() {
        try {
            BundleManifest.parse(JSON.replace("\"context_length\":160,", ""));
            fail();
        } catch (ManifestException ex) {
            assertTrue(ex.getMessage(), ex.getMessage().contains("context_length"));
        }
    }
}
