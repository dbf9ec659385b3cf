// The UEFI firmware the lab boots (Debian's ovmf package): read-only code, and variables that
// each VM gets its own copy of.
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
