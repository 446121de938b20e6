/* A tiny Mach-O dylib: one exported function that calls libSystem. */
int puts(const char *s); /* from libSystem; no macOS SDK headers offline */

int stella_greet(void)
{
    return puts("hello from libstella");
}
