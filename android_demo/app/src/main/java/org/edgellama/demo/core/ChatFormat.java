package org.edgellama.demo.core;

/**
 * The model's chat template, rendered by edgellama into a one-turn format with {system} and {user}
 * placeholders. Each placeholder is filled once, in one pass, so a message that itself contains
 * "{user}" is inserted as written.
 */
public final class ChatFormat {
    private static final String USER = "{user}";
    private static final String SYSTEM = "{system}";

    private final String user;
    private final String systemUser;

    public ChatFormat(String user, String systemUser) {
        this.user = user;
        this.systemUser = systemUser;
    }

    /** The prompt text for one user message; an empty or null system prompt uses the plain format. */
    public String render(String system, String message) {
        boolean withSystem = system != null && !system.isEmpty();
        String template = withSystem ? systemUser : user;
        StringBuilder out = new StringBuilder(template.length() + message.length() + (withSystem ? system.length() : 0));
        int i = 0;
        while (i < template.length()) {
            if (template.startsWith(USER, i)) {
                out.append(message);
                i += USER.length();
            } else if (withSystem && template.startsWith(SYSTEM, i)) {
                out.append(system);
                i += SYSTEM.length();
            } else {
                out.append(template.charAt(i++));
            }
        }
        return out.toString();
    }
}
