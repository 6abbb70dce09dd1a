import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Every change of an access key or an account is announced on the `koala_access_keys` channel
 * (payload: the key id, or `*` for an account change), so CLC processes that cache resolved
 * keys forget them at once, whoever made the change (another worker, `koala access-key`).
 */
export class AccessKeyNotify1764139500000 implements MigrationInterface {
  name = 'AccessKeyNotify1764139500000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION koala_access_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('koala_access_keys', CASE WHEN TG_TABLE_NAME = 'access_keys' THEN OLD.id ELSE '*' END);
        RETURN NULL;
      END $$`);
    await q.query(`CREATE TRIGGER access_keys_changed AFTER UPDATE OR DELETE ON access_keys FOR EACH ROW EXECUTE FUNCTION koala_access_key_changed()`);
    await q.query(`CREATE TRIGGER accounts_changed AFTER UPDATE OR DELETE ON accounts FOR EACH ROW EXECUTE FUNCTION koala_access_key_changed()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TRIGGER accounts_changed ON accounts');
    await q.query('DROP TRIGGER access_keys_changed ON access_keys');
    await q.query('DROP FUNCTION koala_access_key_changed()');
  }
}
