// ALTER TABLE steps: add a column, rename a column, add a column with a default, a check constraint.
exports.up = async (knex) => {
  await knex.schema.alterTable("kx_customer", (t) => {
    t.string("phone", 30);
    t.renameColumn("name", "full_name");
  });
  await knex.schema.alterTable("kx_order", (t) => {
    t.text("note").notNullable().defaultTo("none");
    t.check("total >= 0", [], "kx_order_total_check");
  });
};

exports.down = async (knex) => {
  await knex.schema.alterTable("kx_order", (t) => {
    t.dropChecks("kx_order_total_check");
    t.dropColumn("note");
  });
  await knex.schema.alterTable("kx_customer", (t) => {
    t.renameColumn("full_name", "name");
    t.dropColumn("phone");
  });
};
