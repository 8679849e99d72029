/** The ACME directory an installation uses unless configured (`--acme-directory`). */
export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';
