/** The 12-character prefix Docker itself shows for IDs; for logs and messages only, never for names. */
export const shortId = (id: string | undefined): string => (id ?? '').slice(0, 12);
