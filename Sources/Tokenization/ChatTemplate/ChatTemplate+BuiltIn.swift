extension ChatTemplate {
    /// Gemma 3's instruct turn format, for Gemma 3 files that carry no template (the base
    /// models: their vocabulary has the turn tokens, their GGUF no `tokenizer.chat_template`).
    /// Turns are `<start_of_turn>user|model\n…<end_of_turn>\n` after BOS, a system message is
    /// folded into the first user turn, and a generation prompt opens a model turn. Written for
    /// Lorikeet from that published format (no template file ships with the base GGUF).
    public static let gemma3InstructSource = """
    {{ bos_token }}
    {%- if messages[0]['role'] == 'system' -%}
        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
        {%- set loop_messages = messages[1:] -%}
    {%- else -%}
        {%- set first_user_prefix = '' -%}
        {%- set loop_messages = messages -%}
    {%- endif -%}
    {%- for message in loop_messages -%}
        {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
            {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
        {%- endif -%}
        {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
        {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') }}
        {{- message['content'] | trim }}
        {{- '<end_of_turn>\\n' }}
    {%- endfor -%}
    {%- if add_generation_prompt -%}
        {{ '<start_of_turn>model\\n' }}
    {%- endif -%}
    """

    /// The template a model of GGUF architecture `architecture` uses when its file has none.
    public static func builtInSource(architecture: String?) -> String? {
        architecture == "gemma3" ? gemma3InstructSource : nil
    }
}
