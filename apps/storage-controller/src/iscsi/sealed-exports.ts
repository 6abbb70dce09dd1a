import type { ExportVolumeRequest } from '@koala/contracts';
import type { SealKey } from '@koala/messaging';
import { StorageError } from '../volumes/volume-backend.js';

/** An export with its CHAP secret readable (only in this process's memory). */
export type OpenExport = Omit<ExportVolumeRequest, 'chapSecretSealed'> & { chapSecret: string };

/** Opens the CHAP secret the CLC sealed for this SC (context: the volume id); a clear one is taken as it is. */
export function openExport(req: ExportVolumeRequest, key: SealKey | undefined): OpenExport {
  const { chapSecretSealed, ...rest } = req;
  if (chapSecretSealed === undefined) {
    if (rest.chapSecret === undefined) throw new StorageError('InvalidParameterValue', `export of ${req.volumeId} without a CHAP secret`);
    return { ...rest, chapSecret: rest.chapSecret };
  }
  if (!key) throw new StorageError('Server.ChapSecretUnreadable', `the CHAP secret of ${req.volumeId} is sealed, and this SC has no key`);
  try {
    return { ...rest, chapSecret: key.open(chapSecretSealed, req.volumeId) };
  } catch {
    throw new StorageError('Server.ChapSecretUnreadable', `the CHAP secret of ${req.volumeId} was not sealed for this SC`);
  }
}
