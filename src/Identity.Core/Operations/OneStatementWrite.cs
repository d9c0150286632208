using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Propagation;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace Identity.Core.Operations;

/// <summary>
/// The write of a run that changed one user — its row updated, audit entries and outbox rows recorded, nothing else — sent
/// on PostgreSQL outside any transaction as ONE command, without EF Core's SaveChanges (decision 0094): the user's UPDATE,
/// guarded by its concurrency tokens as SaveChanges guards it, then each INSERT in the order the run added the rows, each
/// guarded by the user's new concurrency stamp (a fresh GUID only this change writes). PostgreSQL runs a command's
/// statements in one implicit transaction, and an INSERT sees the UPDATE before it: a stale change updates nothing and so
/// inserts nothing, and a failed statement rolls all of them back. What that saves per change: SaveChanges' change
/// detection, batch preparation and bookkeeping, and the COMMIT's round trip.
/// </summary>
internal static class OneStatementWrite
{
    public enum Outcome
    {
        /// <summary>Not this shape, provider or transaction state: SaveChanges writes it.</summary>
        NotApplicable,

        /// <summary>Written and committed; the context's entries are as after SaveChanges (the added rows detached).</summary>
        Written,

        /// <summary>The user changed since it was loaded: nothing was written.</summary>
        Stale,
    }

    private sealed record Column(string Name, IProperty Property, RelationalTypeMapping Mapping);

    // The INSERT's columns of each added entity type: every mapped property but a key the database generates.
    private static readonly ConcurrentDictionary<(IModel, Type), Column[]> InsertColumns = new();

    /// <summary>What decides a command's text: the model, the user's modified columns and null tokens (bits by property index), the rows' types.</summary>
    private readonly record struct Shape(IModel Model, ulong Modified, ulong NullTokens, string Rows);

    // The commands by shape (a handful: a name change, a role change, each with its number of regions), each built once.
    private static readonly ConcurrentDictionary<Shape, IRelationalCommand> Commands = new();

    // The user's mapped properties, in the model's order: bit i of a shape is property i.
    private static readonly ConcurrentDictionary<IEntityType, IProperty[]> UserProperties = new();

    private static readonly string[] ParameterNames = [.. Enumerable.Range(0, 128).Select(i => "w" + i.ToString(CultureInfo.InvariantCulture))];

    /// <summary>Writes what <paramref name="change"/> left tracked, if it has this shape; see the type.</summary>
    public static async Task<Outcome> TryAsync(AuthorityDbContext db, Change change, CancellationToken cancellationToken)
    {
        if (!DatabaseProviders.IsPostgreSql(db) || db.Database.CurrentTransaction is not null)
        {
            return Outcome.NotApplicable;
        }

        if (!db.ChangeTracker.AutoDetectChangesEnabled)
        {
            db.ChangeTracker.DetectChanges(); // Entries() detects them itself otherwise
        }

        EntityEntry? userEntry = null;
        foreach (var entry in db.ChangeTracker.Entries())
        {
            switch (entry.State)
            {
                case EntityState.Unchanged or EntityState.Detached:
                    continue;
                case EntityState.Modified when entry.Entity is ApplicationUser user && userEntry is null && change.Names(user):
                    userEntry = entry;
                    continue;
                default:
                    return Outcome.NotApplicable;
            }
        }

        // The run's audit entries and outbox rows, untracked, in the order it recorded them (Change.Rows).
        var added = change.Rows;
        if (added.Any(row => row is not (AuditEntry or OutboxMessage)))
        {
            return Outcome.NotApplicable;
        }

        // The INSERTs' guard is the new stamp: without one (a write that leaves ConcurrencyStamp as it was), two racing
        // changes could not be told apart.
        var stamp = userEntry?.Property(nameof(ApplicationUser.ConcurrencyStamp));
        if (userEntry is null || stamp is null || stamp.CurrentValue is not string newStamp || Equals(stamp.OriginalValue, newStamp))
        {
            return Outcome.NotApplicable;
        }

        // The command's shape — which of the user's columns changed, which tokens were null, the rows' types — picks a
        // command built once (0096); this call only gathers the values, in the order the command's parameters were added.
        var users = userEntry.Metadata;
        var properties = UserProperties.GetOrAdd(users, static users => [.. users.GetProperties()]);
        if (properties.Length > 64)
        {
            return Outcome.NotApplicable; // a shape's bits would not hold them
        }

        var values = new List<object?>(properties.Length + added.Count * 16) { userEntry.Property(KeyOf(users)).CurrentValue };
        ulong modified = 0, nullTokens = 0;
        for (var i = 0; i < properties.Length; i++)
        {
            var property = userEntry.Property(properties[i]);
            if (property.IsModified)
            {
                modified |= 1UL << i;
                values.Add(property.CurrentValue);
            }
        }

        for (var i = 0; i < properties.Length; i++)
        {
            if (properties[i].IsConcurrencyToken)
            {
                var original = userEntry.Property(properties[i]).OriginalValue;
                if (original is null)
                {
                    nullTokens |= 1UL << i;
                }
                else
                {
                    values.Add(original);
                }
            }
        }

        var rowTypes = new IEntityType[added.Count];
        for (var r = 0; r < added.Count; r++)
        {
            rowTypes[r] = db.Model.FindEntityType(added[r].GetType())!;
            foreach (var column in InsertColumns.GetOrAdd((db.Model, rowTypes[r].ClrType), static (_, type) => ColumnsOf(type), rowTypes[r]))
            {
                values.Add(column.Property.GetGetter().GetClrValueUsingContainingEntity(added[r]));
            }
        }

        var shape = new Shape(db.Model, modified, nullTokens, string.Join(',', rowTypes.Select(t => t.Name)));
        var template = Commands.GetOrAdd(shape, static (shape, state) => Build(state.Db, state.Users, state.Properties, shape, state.RowTypes),
            (Db: db, Users: users, Properties: properties, RowTypes: rowTypes));
        var parameters = new Dictionary<string, object?>(values.Count);
        for (var i = 0; i < values.Count; i++)
        {
            parameters[ParameterName(i)] = values[i];
        }

        var rows = await TemplateCommands.ExecuteNonQueryAsync(db, template, parameters, CommandSource.ExecuteSqlRaw, cancellationToken);
        if (rows == 0)
        {
            return Outcome.Stale;
        }

        if (rows != 1 + added.Count)
        {
            // Cannot happen: the guard holds for every INSERT once the UPDATE wrote the row.
            throw new InvalidOperationException($"The change's command wrote {rows} rows, not {1 + added.Count}.");
        }

        change.RowsWritten(); // their ids are the database's: nothing reads these rows again
        db.ChangeTracker.AcceptAllChanges();
        return Outcome.Written;
    }

    private static IProperty KeyOf(IEntityType entityType) => entityType.FindPrimaryKey()!.Properties.Single();

    private static string ParameterName(int index) =>
        index < ParameterNames.Length ? ParameterNames[index] : "w" + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// The command of one shape: the user's UPDATE of the modified columns, guarded by its key and concurrency tokens,
    /// then one INSERT per row, each guarded by the user's new stamp. Its parameters are named w0, w1, … in the order
    /// <see cref="TryAsync"/> gathers their values: the key, the modified columns, the tokens' loaded values, the rows'
    /// columns.
    /// </summary>
    private static IRelationalCommand Build(DbContext db, IEntityType users, IProperty[] properties, Shape shape, IEntityType[] rowTypes)
    {
        var sqlHelper = db.GetService<ISqlGenerationHelper>();
        var builder = db.GetService<IRelationalCommandBuilderFactory>().Create();
        var count = 0;
        string Parameter(RelationalTypeMapping mapping, bool nullable)
        {
            var name = ParameterName(count++);
            builder.AddParameter(name, sqlHelper.GenerateParameterName(name), mapping, nullable);
            return sqlHelper.GenerateParameterNamePlaceholder(name);
        }

        var usersTable = sqlHelper.DelimitIdentifier(users.GetTableName()!, users.GetSchema());
        var key = KeyOf(users);
        var id = Parameter(key.GetRelationalTypeMapping(), nullable: false);
        var sql = new StringBuilder("UPDATE ").Append(usersTable).Append(" SET ");
        string? stampParameter = null;
        var set = 0;
        for (var i = 0; i < properties.Length; i++)
        {
            if ((shape.Modified & (1UL << i)) != 0)
            {
                var placeholder = Parameter(properties[i].GetRelationalTypeMapping(), properties[i].IsNullable);
                stampParameter = properties[i].Name == nameof(ApplicationUser.ConcurrencyStamp) ? placeholder : stampParameter;
                sql.Append(set++ == 0 ? "" : ", ").Append(sqlHelper.DelimitIdentifier(properties[i].GetColumnName())).Append(" = ").Append(placeholder);
            }
        }

        sql.Append(" WHERE ").Append(sqlHelper.DelimitIdentifier(key.GetColumnName())).Append(" = ").Append(id);
        for (var i = 0; i < properties.Length; i++)
        {
            if (properties[i].IsConcurrencyToken)
            {
                sql.Append(" AND ").Append(sqlHelper.DelimitIdentifier(properties[i].GetColumnName()));
                sql.Append((shape.NullTokens & (1UL << i)) != 0 ? " IS NULL" : " = " + Parameter(properties[i].GetRelationalTypeMapping(), properties[i].IsNullable));
            }
        }

        var stampColumn = sqlHelper.DelimitIdentifier(users.FindProperty(nameof(ApplicationUser.ConcurrencyStamp))!.GetColumnName());
        var guard = $" WHERE EXISTS (SELECT 1 FROM {usersTable} WHERE {sqlHelper.DelimitIdentifier(key.GetColumnName())} = {id} AND {stampColumn} = {stampParameter})";
        foreach (var entityType in rowTypes)
        {
            var columns = InsertColumns.GetOrAdd((db.Model, entityType.ClrType), static (_, type) => ColumnsOf(type), entityType);
            var table = sqlHelper.DelimitIdentifier(entityType.GetTableName()!, entityType.GetSchema());
            sql.Append(";\nINSERT INTO ").Append(table).Append(" (").AppendJoin(", ", columns.Select(c => sqlHelper.DelimitIdentifier(c.Name))).Append(") SELECT ");
            sql.AppendJoin(", ", columns.Select(c => Parameter(c.Mapping, c.Property.IsNullable)));
            sql.Append(guard);
        }

        return builder.Append(sql.ToString()).Build();
    }

    private static Column[] ColumnsOf(IEntityType entityType) =>
        [.. entityType.GetProperties()
            .Where(p => !(p.IsPrimaryKey() && p.ValueGenerated != ValueGenerated.Never))
            .Select(p => new Column(p.GetColumnName(), p, p.GetRelationalTypeMapping()))];
}
