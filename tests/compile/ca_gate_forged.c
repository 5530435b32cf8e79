/* Must NOT compile: the public API alone cannot make a gate of its own, the type is
 * opaque (compile_ca_gate_opaque expects the incomplete-type error). */
#include "ca/ca.h"

int main(void)
{
    static const smki_ca_gate forged = {0};
    smki_ca_db db = {0};
    db.gate = &forged;
    return db.gate != 0;
}
