/* placeholder: replaced as the module lands */
typedef int smki_placeholder_t;
