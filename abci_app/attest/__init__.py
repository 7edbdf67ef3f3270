"""Pure verification of AMD SEV-SNP attestation evidence, for use inside consensus.

report.py parses the 1184-byte attestation report, certs.py checks the ARK -> ASK -> VCEK chain
against AMD's pinned roots (roots.py), verify.py checks the report's signature, the VCEK's TCB and
chip id, the member-key binding and a policy. Only the standard library and `cryptography`: no
I/O, no wall clock (the caller passes the block time).
"""
