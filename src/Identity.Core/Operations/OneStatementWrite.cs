using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using System.Text;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Propagation;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
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

    private const string PostgreSqlProvider = "Npgsql.EntityFrameworkCore.PostgreSQL";

    // Whether a model is PostgreSQL's (each provider builds its own model): DatabaseFacade.ProviderName resolves the
    // provider's services on every call (1 % of the write path's CPU, perf).
    private static readonly ConcurrentDictionary<IModel, bool> OnPostgreSql = new();

    /// <summary>Writes what <paramref name="change"/> left tracked, if it has this shape; see the type.</summary>
    public static async Task<Outcome> TryAsync(AuthorityDbContext db, Change change, CancellationToken cancellationToken)
    {
        if (!OnPostgreSql.GetOrAdd(db.Model, static (_, db) => db.Database.ProviderName == PostgreSqlProvider, db)
            || db.Database.CurrentTransaction is not null)
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

        var sqlHelper = db.GetService<ISqlGenerationHelper>();
        await using var command = db.Database.GetDbConnection().CreateCommand();
        var parameters = new List<DbParameter>();
        string Parameter(RelationalTypeMapping mapping, object? value, bool nullable)
        {
            var name = "w" + parameters.Count.ToString(CultureInfo.InvariantCulture);
            parameters.Add(mapping.CreateParameter(command, sqlHelper.GenerateParameterName(name), value, nullable));
            return sqlHelper.GenerateParameterNamePlaceholder(name);
        }

        var users = userEntry.Metadata;
        var usersTable = sqlHelper.DelimitIdentifier(users.GetTableName()!, users.GetSchema());
        var key = users.FindPrimaryKey()!.Properties.Single();
        var id = Parameter(key.GetRelationalTypeMapping(), userEntry.Property(key.Name).CurrentValue, nullable: false);
        var sql = new StringBuilder("UPDATE ").Append(usersTable).Append(" SET ");
        var set = 0;
        string? stampParameter = null;
        foreach (var property in userEntry.Properties.Where(p => p.IsModified))
        {
            var placeholder = Parameter(property.Metadata.GetRelationalTypeMapping(), property.CurrentValue, property.Metadata.IsNullable);
            stampParameter = property.Metadata.Name == nameof(ApplicationUser.ConcurrencyStamp) ? placeholder : stampParameter;
            sql.Append(set++ == 0 ? "" : ", ").Append(sqlHelper.DelimitIdentifier(property.Metadata.GetColumnName())).Append(" = ").Append(placeholder);
        }

        sql.Append(" WHERE ").Append(sqlHelper.DelimitIdentifier(key.GetColumnName())).Append(" = ").Append(id);
        foreach (var token in users.GetProperties().Where(p => p.IsConcurrencyToken))
        {
            var original = userEntry.Property(token.Name).OriginalValue;
            sql.Append(" AND ").Append(sqlHelper.DelimitIdentifier(token.GetColumnName()));
            sql.Append(original is null ? " IS NULL" : " = " + Parameter(token.GetRelationalTypeMapping(), original, token.IsNullable));
        }

        var guard = $" WHERE EXISTS (SELECT 1 FROM {usersTable} WHERE {sqlHelper.DelimitIdentifier(key.GetColumnName())} = {id}" +
            $" AND {sqlHelper.DelimitIdentifier(stamp.Metadata.GetColumnName())} = {stampParameter})";
        foreach (var row in added)
        {
            var entityType = db.Model.FindEntityType(row.GetType())!;
            var columns = InsertColumns.GetOrAdd((db.Model, entityType.ClrType), static (_, type) => ColumnsOf(type), entityType);
            var table = sqlHelper.DelimitIdentifier(entityType.GetTableName()!, entityType.GetSchema());
            sql.Append(";\nINSERT INTO ").Append(table).Append(" (").AppendJoin(", ", columns.Select(c => sqlHelper.DelimitIdentifier(c.Name))).Append(") SELECT ");
            sql.AppendJoin(", ", columns.Select(c => Parameter(c.Mapping, c.Property.GetGetter().GetClrValueUsingContainingEntity(row), c.Property.IsNullable)));
            sql.Append(guard);
        }

        var rows = await db.Database.ExecuteSqlRawAsync(sql.ToString(), parameters, cancellationToken);
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

    private static Column[] ColumnsOf(IEntityType entityType) =>
        [.. entityType.GetProperties()
            .Where(p => !(p.IsPrimaryKey() && p.ValueGenerated != ValueGenerated.Never))
            .Select(p => new Column(p.GetColumnName(), p, p.GetRelationalTypeMapping()))];
}
