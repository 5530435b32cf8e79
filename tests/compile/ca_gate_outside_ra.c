/* Must NOT compile: a file outside ra/ that reaches for the RA's capability to write in
 * a governed store (tests/CMakeLists.txt: compile_ca_gate_private expects the #error). */
#include "ca/ca_gate.h"

int main(void)
{
    return smki_ca_gate_for_ra() != 0;
}
