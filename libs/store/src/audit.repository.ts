import { Injectable } from '@nestjs/common';
import { Database } from '@app/db';

/** `ops_audit`: one row per operator action of the CLI that changes something, or plans to. */
@Injectable()
export class AuditRepository {
  constructor(private readonly database: Database) {}

  async record(entry: {
    actor: string;
    command: string;
    args: unknown;
    plan: unknown;
    outcome: string;
  }): Promise<void> {
    await this.database.db.none(
      'INSERT INTO ops_audit (actor, command, args, plan, outcome) VALUES ($1, $2, $3::jsonb, $4::jsonb, $5)',
      [entry.actor, entry.command, JSON.stringify(entry.args), JSON.stringify(entry.plan ?? null), entry.outcome],
    );
  }
}
