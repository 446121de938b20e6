/* A tiny Mach-O executable linked against libstella.dylib through @rpath. */
int stella_greet(void);

int main(void)
{
    return stella_greet() < 0;
}
