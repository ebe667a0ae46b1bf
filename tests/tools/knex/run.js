// knex migrations (latest, rollback of everything, latest again) and queries through the query builder,
// against the server in VOUCHDB_* (run by tests/tools.rs with NODE_PATH at the pinned node_modules).
const path = require("path");
const knex = require("knex")({
  client: "pg",
  connection: {
    host: process.env.VOUCHDB_HOST,
    port: Number(process.env.VOUCHDB_PORT),
    user: process.env.VOUCHDB_USER,
    password: process.env.VOUCHDB_PASSWORD,
    database: process.env.VOUCHDB_DB,
  },
  migrations: { directory: path.join(__dirname, "migrations") },
  pool: { min: 0, max: 4 },
});

function check(cond, what) {
  if (!cond) {
    throw new Error(`FAILED: ${what}`);
  }
}

async function work() {
  const [ann] = await knex("kx_customer").insert({ email: "ann@example.com", full_name: "Ann" }).returning(["id", "created_at"]);
  check(Number.isInteger(ann.id) && ann.created_at instanceof Date, `insert returning ${JSON.stringify(ann)}`);
  const [bob] = await knex("kx_customer").insert({ email: "bob@example.com", full_name: "Bob", phone: "555" }).returning("id");
  await knex("kx_order").insert([
    { customer_id: ann.id, total: "12.50", meta: { items: 2 } },
    { customer_id: ann.id, total: "7.25", paid: true },
    { customer_id: bob.id, total: "3.00" },
  ]);
  const per = await knex("kx_order as o")
    .join("kx_customer as c", "c.id", "o.customer_id")
    .select("c.full_name")
    .count("o.id as n")
    .sum("o.total as sum")
    .groupBy("c.full_name")
    .orderBy("c.full_name");
  check(per.length === 2 && per[0].full_name === "Ann" && Number(per[0].n) === 2 && Number(per[0].sum) === 19.75, `per customer ${JSON.stringify(per)}`);
  const meta = await knex("kx_order").whereNotNull("meta").first("meta", "note");
  check(meta.meta.items === 2 && meta.note === "none", `jsonb and default ${JSON.stringify(meta)}`);
  const updated = await knex("kx_order").where({ paid: false }).update({ paid: true });
  check(updated === 2, `updated ${updated}`);

  // A transaction that fails is rolled back as a whole.
  try {
    await knex.transaction(async (trx) => {
      await trx("kx_order").insert({ customer_id: bob.id, total: "1.00" });
      await trx("kx_customer").insert({ email: "ann@example.com", full_name: "Dup" });
    });
    check(false, "duplicate email accepted");
  } catch (e) {
    check(e.code === "23505", `unique violation sqlstate ${e.code} ${e.message}`);
  }
  check(Number((await knex("kx_order").count("* as n"))[0].n) === 3, "rolled-back insert is absent");
  // Constraint errors carry PostgreSQL's SQLSTATEs.
  for (const [row, code] of [
    [{ customer_id: 999999, total: "1" }, "23503"],
    [{ customer_id: ann.id, total: "-1" }, "23514"],
  ]) {
    try {
      await knex("kx_order").insert(row);
      check(false, `accepted ${JSON.stringify(row)}`);
    } catch (e) {
      check(e.code === code, `expected ${code}, got ${e.code} ${e.message}`);
    }
  }
  // ON DELETE CASCADE.
  await knex("kx_customer").where({ id: bob.id }).del();
  check(Number((await knex("kx_order").count("* as n"))[0].n) === 2, "cascade delete");
}

async function main() {
  const [, up] = await knex.migrate.latest();
  check(up.length === 2, `migrations applied ${up}`);
  check(await knex.schema.hasColumn("kx_customer", "full_name"), "renamed column");
  await work();
  const [, down] = await knex.migrate.rollback(undefined, true);
  check(down.length === 2, `migrations rolled back ${down}`);
  check(!(await knex.schema.hasTable("kx_order")) && !(await knex.schema.hasTable("kx_customer")), "tables dropped");
  await knex.migrate.latest();
  check(await knex.schema.hasColumn("kx_customer", "phone"), "migrated up again");
  await work();
  console.log("knex ok");
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => knex.destroy());
