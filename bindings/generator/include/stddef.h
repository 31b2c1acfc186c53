/* Freestanding stddef.h for parsing API manifests (the NuGet libclang ships no resource headers). The types come
 * from the compiler's own predefined macros, so a parse never depends on the machine's headers. */
#ifndef EB_STDDEF_H
#define EB_STDDEF_H
typedef __SIZE_TYPE__ size_t;
typedef __PTRDIFF_TYPE__ ptrdiff_t;
#ifdef __cplusplus
#define NULL nullptr
#else
#define NULL ((void *)0)
#endif
#define offsetof(type, member) __builtin_offsetof(type, member)
#endif
