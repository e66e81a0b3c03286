# The case list: one zdtm_case() per program in cases/ (see CMakeLists.txt for the arguments).
# Kinds other than restore expect the engine to refuse; REASON is an extended regex the refusal
# reason must match (case-insensitively).

# Memory.
zdtm_case(mem_anon_small)
zdtm_case(mem_anon_small_static SOURCE mem_anon_small.c STATIC)
zdtm_case(mem_anon_big)
zdtm_case(mem_shared_anon)
zdtm_case(mem_file_private)
zdtm_case(mem_file_shared)
zdtm_case(mem_mprotect)
zdtm_case(mem_brk_malloc)
zdtm_case(mem_stack_deep)
zdtm_case(mem_mremap)
zdtm_case(mem_growsdown)
