/* A tiny Windows DLL: one export that calls into KERNEL32 and USER32. */
#include <windows.h>

__declspec(dllexport) int stella_hello(void)
{
    MessageBeep(0);
    return (int)GetCurrentProcessId();
}
