package org.edgellama.demo.core;

/**
 * Every field name of a bundle's manifest.json, as edgellama/android/bundle.schema.json names them. The
 * readers use only these constants, and tests/test_android.py checks that this list and the schema's
 * property names are the same set, so the Python and Java sides cannot drift apart silently.
 */
public final class ManifestFields {
    private ManifestFields() {}

    // top level
    public static final String FORMAT_VERSION = "format_version";
    public static final String NAME = "name";
    public static final String CREATED = "created";
    public static final String PRODUCER = "producer";
    public static final String MODEL = "model";
    public static final String GENERATION = "generation";
    public static final String FILES = "files";
    public static final String RUNTIMES = "runtimes";

    // model
    public static final String SOURCE_SHA256 = "source_sha256";
    public static final String SOURCE_FORMAT = "source_format";
    public static final String BOS_ID = "bos_id";
    public static final String EOS_IDS = "eos_ids";
    public static final String ADD_BOS = "add_bos";
    public static final String CONTEXT_LENGTH = "context_length";
    public static final String CHAT_TEMPLATE = "chat_template";
    public static final String CHAT_FORMAT = "chat_format";
    public static final String USER = "user";
    public static final String SYSTEM_USER = "system_user";

    // generation
    public static final String TEMPERATURE = "temperature";
    public static final String MAX_NEW_TOKENS = "max_new_tokens";
    public static final String SYSTEM_PROMPT = "system_prompt";

    // files
    public static final String PATH = "path";
    public static final String BYTES = "bytes";
    public static final String SHA256 = "sha256";

    // runtimes
    public static final String TYPE = "type";
    public static final String FOLDER = "folder";
    public static final String MODEL_FILE = "model_file";
    public static final String TOKENIZER_FILE = "tokenizer_file";
    public static final String BACKEND = "backend";
    public static final String QUANTIZATION = "quantization";
    public static final String SCHEME = "scheme";
    public static final String GROUP_SIZE = "group_size";
    public static final String RECIPE = "recipe";
    public static final String THREADS = "threads";
    public static final String MAX_SEQ_LEN = "max_seq_len";
    public static final String MAX_CONTEXT_LEN = "max_context_len";
    public static final String PORTABLE_OPS = "portable_ops";
    public static final String DATA_FILE = "data_file";
    public static final String PARITY = "parity";
    public static final String VERDICT = "verdict";
    public static final String REFERENCES = "references";
    public static final String TOP1_AGREEMENT = "top1_agreement";
    public static final String KL_MEAN = "kl_mean";
    public static final String PPL_RATIO = "ppl_ratio";

    /** The format_version this app reads. */
    public static final int SUPPORTED_FORMAT_VERSION = 1;
}
