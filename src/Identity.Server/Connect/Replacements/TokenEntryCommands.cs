using System.Collections.Concurrent;
using System.Data.Common;
using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore.Models;

namespace Identity.Server.Connect.Replacements;

/// <summary>
/// The token endpoint's two statements on a token entry, the code's or the refresh token's, sent without EF Core's
/// LINQ pipeline: the read of the entry with its authorization (one SELECT with a LEFT JOIN, where OpenIddict's store
/// joined the client's row too), materialised into untracked entities, and the conditional update that redeems it
/// (<c>UPDATE … WHERE Id = @id AND ConcurrencyToken = @original</c>, the replay check). The query cache lookup, the
/// materialiser, change tracking and <c>SaveChanges</c>' batch preparation were most of EF Core's ~20 % of the server's
/// CPU per SSO round trip left after decision 0070 (perf, 2026-12-04; decision 0093).
/// <para>
/// Each command is built once per model from EF Core's metadata (table and column names, the provider's quoting,
/// parameter placeholders and type mappings, as <see cref="HeldRowInserts"/> does) and executed through EF Core's
/// relational command on the context's connection and transaction, so that its logging, interceptors and command
/// timeout apply; its text never changes, so Npgsql's automatic preparation (<c>Max Auto Prepare</c>, decision 0013)
/// prepares it on PostgreSQL. The SQL is plain SQL-92 (a LEFT JOIN, named parameters) for SQLite, PostgreSQL and SQL Server.
/// </para>
/// </summary>
internal static class TokenEntryCommands
{
    /// <summary>A column read or written: the property, and for a foreign key (a shadow property) the principal's type.</summary>
    private sealed record Column(IProperty Property, Type? Principal, RelationalTypeMapping Mapping, Type ReadAs, string ParameterName);

    /// <summary>A read of an entry with its authorization; the redeeming one's first column tells whether it redeemed the entry.</summary>
    private sealed record Select(IRelationalCommand Command, Column[] Token, Column[] Authorization, bool Redeeming)
    {
        /// <summary>The ordinal of the entry's first column.</summary>
        public int First => Redeeming ? 1 : 0;
    }

    private enum Lookup
    {
        ById,
        ByReference,
        /// <summary>By reference id, redeeming the code's entry on the way (PostgreSQL; decision 0101).</summary>
        Redeeming,
    }

    private sealed record Update(IRelationalCommand Command, Column[] Columns, string OriginalParameter);

    private const string KeyParameterName = "key";
    private const string OriginalParameterName = "original";
    private const string ClientParameterName = "client";
    private const string NowParameterName = "now";
    private const string ConcurrencyParameterName = "concurrency";

    private static readonly ConcurrentDictionary<(IModel, Lookup), Select> Selects = new();
    private static readonly ConcurrentDictionary<IModel, Update> Updates = new();

    /// <summary>
    /// The token entry whose id (or, with <paramref name="byReference"/>, reference id) is <paramref name="key"/>, with its
    /// authorization; both untracked, known to <paramref name="known"/> with their foreign keys. Null if there is none.
    /// <para>
    /// With a <paramref name="redemption"/>, on PostgreSQL, the same statement redeems the entry if it is an authorization
    /// code, valid, unexpired, issued to the redeeming client, of a valid authorization (or none): a data-modifying CTE
    /// whose UPDATE returns the redeemed row, or, when it updated nothing, the row as it is (decision 0101). A redeemed
    /// entry is shown to OpenIddict as it was (valid, no redemption date) and remembered by <paramref name="known"/>, so
    /// that <c>TryRedeemAsync</c>' update costs no statement. The row as it is may show a code another request redeemed
    /// meanwhile as still valid (READ COMMITTED: the statement's snapshot predates that request's commit); its
    /// <c>TryRedeemAsync</c> then runs the conditional update, which finds the concurrency token changed and fails as
    /// today's lost race does. SQLite and SQL Server read only; the update follows as before.
    /// </para>
    /// </summary>
    public static async Task<OpenIddictEntityFrameworkCoreToken?> ReadAsync(DbContext db, string key, bool byReference,
        CodeRedemption? redemption, CodeIssuanceBatch known, CancellationToken cancellationToken)
    {
        var lookup = !byReference ? Lookup.ById
            : redemption is not null && DatabaseProviders.IsPostgreSql(db) ? Lookup.Redeeming
            : Lookup.ByReference;
        var select = Selects.GetOrAdd((db.Model, lookup), static (k, db) => BuildSelect(db, k.Item2), db);
        var values = new Dictionary<string, object?>(4) { [KeyParameterName] = key };
        if (select.Redeeming)
        {
            values[ClientParameterName] = redemption!.ApplicationId;
            values[NowParameterName] = redemption.Now;
            values[ConcurrencyParameterName] = Guid.NewGuid().ToString();
        }

        var connection = db.GetService<IRelationalConnection>();
        var command = TemplateCommands.Rent(connection, select.Command);
        try
        {
            await using var reader = await command.ExecuteReaderAsync(
                TemplateCommands.Parameters(db, connection, values, CommandSource.FromSqlQuery), cancellationToken);
            if (!await reader.ReadAsync(cancellationToken))
            {
                return null;
            }

            var row = reader.DbDataReader;
            var token = Adopt(row, select, known);
            if (select.Redeeming && row.GetBoolean(0) && token.RedemptionDate is { } redeemed)
            {
                known.RedeemedOnRead(token, redeemed);
                token.Status = OpenIddictConstants.Statuses.Valid;
                token.RedemptionDate = null;
            }

            return token;
        }
        finally
        {
            connection.ReturnCommand(command);
        }
    }

    private static OpenIddictEntityFrameworkCoreToken Adopt(DbDataReader row, Select select, CodeIssuanceBatch known)
    {
        var token = new OpenIddictEntityFrameworkCoreToken();
        var keys = Materialise(row, select.First, select.Token, token);
        if (known.Find<OpenIddictEntityFrameworkCoreToken>(token.Id, t => t.Id) is { } seen)
        {
            return seen; // read before in this request (by its other key): one instance per row, as EF Core's identity map gives
        }

        known.Adopt(token, keys);
        var authorizationId = keys.GetValueOrDefault(typeof(OpenIddictEntityFrameworkCoreAuthorization));
        if (authorizationId is not null && known.Find<OpenIddictEntityFrameworkCoreAuthorization>(authorizationId, a => a.Id) is null
            && !row.IsDBNull(select.First + select.Token.Length))
        {
            // OpenIddict's ValidateAuthorizationEntry finds it here (BatchedAuthorizationStore) instead of reading it again.
            var authorization = new OpenIddictEntityFrameworkCoreAuthorization();
            known.Adopt(authorization, Materialise(row, select.First + select.Token.Length, select.Authorization, authorization));
        }

        return token;
    }

    /// <summary>
    /// Writes every column of <paramref name="token"/> (as EF Core's <c>Update</c> does) where its concurrency token is
    /// still <paramref name="original"/>. Returns false when another request changed the row first (or it is gone): on
    /// PostgreSQL the second writer waits for the first's row lock and then finds the token changed; SQLite has one
    /// writer at a time; SQL Server locks the row the same way.
    /// </summary>
    public static async Task<bool> TryUpdateAsync(
        DbContext db, OpenIddictEntityFrameworkCoreToken token, string? original, CodeIssuanceBatch known, CancellationToken cancellationToken)
    {
        var update = Updates.GetOrAdd(db.Model, static (_, db) => BuildUpdate(db), db);
        var values = new Dictionary<string, object?>(update.Columns.Length + 1);
        foreach (var column in update.Columns)
        {
            values[column.ParameterName] = EntityColumns.ValueOf(column.Property, column.Principal, token, known);
        }

        values[update.OriginalParameter] = original;
        return await TemplateCommands.ExecuteNonQueryAsync(db, update.Command, values, CommandSource.ExecuteSqlRaw, cancellationToken) == 1;
    }

    /// <summary>Sets the mapped properties of <paramref name="entity"/> from the row; returns its foreign keys.</summary>
    private static Dictionary<Type, string> Materialise(DbDataReader row, int first, Column[] columns, object entity)
    {
        var keys = new Dictionary<Type, string>(2);
        for (var i = 0; i < columns.Length; i++)
        {
            var column = columns[i];
            if (row.IsDBNull(first + i))
            {
                continue; // a new entity's properties are null already
            }

            var value = Read(row, first + i, column.ReadAs);
            if (column.Mapping.Converter is { } converter)
            {
                value = converter.ConvertFromProvider(value);
            }

            if (column.Principal is { } principal)
            {
                keys[principal] = (string)value!;
            }
            else
            {
                column.Property.PropertyInfo!.SetValue(entity, value);
            }
        }

        return keys;
    }

    // The typed getters, as EF Core's materialiser uses them: SQLite keeps dates as text, which GetDateTime parses.
    private static object? Read(DbDataReader row, int ordinal, Type type) =>
        type == typeof(string) ? row.GetString(ordinal)
        : type == typeof(DateTime) ? row.GetDateTime(ordinal)
        : type == typeof(DateTimeOffset) ? row.GetFieldValue<DateTimeOffset>(ordinal)
        : type == typeof(long) ? row.GetInt64(ordinal)
        : type == typeof(int) ? row.GetInt32(ordinal)
        : type == typeof(bool) ? row.GetBoolean(ordinal)
        : row.GetValue(ordinal);

    private static Column[] Columns(IEntityType entityType) =>
        EntityColumns.Of(entityType).Select(c =>
        {
            var mapping = c.Property.GetRelationalTypeMapping();
            var readAs = mapping.Converter?.ProviderClrType ?? mapping.ClrType;
            return new Column(c.Property, c.Principal, mapping, Nullable.GetUnderlyingType(readAs) ?? readAs, ParameterName(c.Property));
        }).ToArray();

    private static IEntityType EntityType<T>(DbContext db) =>
        db.Model.FindEntityType(typeof(T)) ?? throw new InvalidOperationException($"{typeof(T)} is not in the model.");

    private static string ParameterName(IProperty property) => "p_" + property.GetColumnName();

    private static Select BuildSelect(DbContext db, Lookup lookup)
    {
        var sql = db.GetService<ISqlGenerationHelper>();
        var tokens = EntityType<OpenIddictEntityFrameworkCoreToken>(db);
        var authorizations = EntityType<OpenIddictEntityFrameworkCoreAuthorization>(db);
        var token = Columns(tokens);
        var authorizationKey = authorizations.FindPrimaryKey()!.Properties.Single();
        // The authorization's key column comes first of its columns: whether it is null tells whether the join found one.
        Column[] authorization = [.. Columns(authorizations).OrderBy(c => c.Property == authorizationKey ? 0 : 1)];
        var toAuthorization = token.Single(c => c.Principal == typeof(OpenIddictEntityFrameworkCoreAuthorization)).Property;
        var by = lookup == Lookup.ById
            ? tokens.FindPrimaryKey()!.Properties.Single()
            : tokens.FindProperty(nameof(OpenIddictEntityFrameworkCoreToken.ReferenceId))!;
        var tokenTable = EntityColumns.Table(sql, tokens);
        var authorizationTable = EntityColumns.Table(sql, authorizations);

        string Name(string alias, IProperty property) => $"{alias}.{sql.DelimitIdentifier(property.GetColumnName())}";
        string Placeholder(string parameter) => sql.GenerateParameterNamePlaceholder(parameter);
        // The entry's columns and its authorization's, from a source of token rows (the table, or the CTE's updated rows).
        string Joined(string source, string alias) =>
            $"{string.Join(", ", token.Select(c => Name(alias, c.Property)).Concat(authorization.Select(c => Name("a", c.Property))))} " +
            $"FROM {source} LEFT JOIN {authorizationTable} a ON {Name("a", authorizationKey)} = {Name(alias, toAuthorization)}";
        var lookedUp = $"{Name("t", by)} = {Placeholder(KeyParameterName)}";

        var builder = db.GetService<IRelationalCommandBuilderFactory>().Create();
        builder.AddParameter(KeyParameterName, sql.GenerateParameterName(KeyParameterName), by.GetRelationalTypeMapping(), nullable: false);
        if (lookup != Lookup.Redeeming)
        {
            return new Select(builder.Append($"SELECT {Joined(tokenTable + " t", "t")} WHERE {lookedUp}").Build(), token, authorization, Redeeming: false);
        }

        // PostgreSQL's data-modifying CTE (decision 0101). The UPDATE's conditions are those OpenIddict checks after the
        // read that need no payload (type, status, client, expiry, the authorization's status): a code one of them would
        // refuse stays as it is, as before. Its redirect_uri and PKCE verifier are in the payload, checked after the read.
        // The authorization's status is a scalar subquery, not EXISTS: a generic plan made while the table was empty
        // hashed the EXISTS (every valid authorization read, per statement, as the table grew: 3x PostgreSQL's CPU per
        // round trip in the bench); a scalar subquery is looked up by the key each time.
        IProperty Token(string name) => tokens.FindProperty(name)!;
        var type = Token(nameof(OpenIddictEntityFrameworkCoreToken.Type));
        var status = Token(nameof(OpenIddictEntityFrameworkCoreToken.Status));
        var expiration = Token(nameof(OpenIddictEntityFrameworkCoreToken.ExpirationDate));
        var redemption = Token(nameof(OpenIddictEntityFrameworkCoreToken.RedemptionDate));
        var concurrency = tokens.GetProperties().Single(p => p.IsConcurrencyToken);
        var toApplication = token.Single(c => c.Principal == typeof(OpenIddictEntityFrameworkCoreApplication)).Property;
        var authorizationStatus = authorizations.FindProperty(nameof(OpenIddictEntityFrameworkCoreAuthorization.Status))!;
        string Literal(IProperty property, string value) => property.GetRelationalTypeMapping().GenerateSqlLiteral(value);
        string Column(IProperty property) => sql.DelimitIdentifier(property.GetColumnName());
        var valid = Literal(status, OpenIddictConstants.Statuses.Valid);
        builder.Append(
            $"WITH r AS (UPDATE {tokenTable} AS u SET {Column(status)} = {Literal(status, OpenIddictConstants.Statuses.Redeemed)}, " +
            $"{Column(redemption)} = {Placeholder(NowParameterName)}, {Column(concurrency)} = {Placeholder(ConcurrencyParameterName)} " +
            $"WHERE {Name("u", by)} = {Placeholder(KeyParameterName)} " +
            $"AND {Name("u", type)} = {Literal(type, OpenIddictConstants.TokenTypeIdentifiers.Private.AuthorizationCode)} " +
            $"AND {Name("u", status)} = {valid} " +
            $"AND {Name("u", toApplication)} = {Placeholder(ClientParameterName)} " +
            $"AND ({Name("u", expiration)} IS NULL OR {Name("u", expiration)} > {Placeholder(NowParameterName)}) " +
            $"AND ({Name("u", toAuthorization)} IS NULL OR (SELECT {Name("x", authorizationStatus)} FROM {authorizationTable} x " +
            $"WHERE {Name("x", authorizationKey)} = {Name("u", toAuthorization)}) = {Literal(authorizationStatus, OpenIddictConstants.Statuses.Valid)}) " +
            $"RETURNING {string.Join(", ", token.Select(c => Name("u", c.Property)))}) " +
            $"SELECT TRUE, {Joined("r", "r")} " +
            $"UNION ALL SELECT FALSE, {Joined(tokenTable + " t", "t")} WHERE {lookedUp} AND NOT EXISTS (SELECT 1 FROM r)");
        builder.AddParameter(ClientParameterName, sql.GenerateParameterName(ClientParameterName), toApplication.GetRelationalTypeMapping(), nullable: false);
        builder.AddParameter(NowParameterName, sql.GenerateParameterName(NowParameterName), redemption.GetRelationalTypeMapping(), nullable: false);
        builder.AddParameter(ConcurrencyParameterName, sql.GenerateParameterName(ConcurrencyParameterName), concurrency.GetRelationalTypeMapping(), nullable: false);
        return new Select(builder.Build(), token, authorization, Redeeming: true);
    }

    private static Update BuildUpdate(DbContext db)
    {
        var sql = db.GetService<ISqlGenerationHelper>();
        var tokens = EntityType<OpenIddictEntityFrameworkCoreToken>(db);
        var columns = Columns(tokens);
        var key = tokens.FindPrimaryKey()!.Properties.Single();
        var concurrency = tokens.GetProperties().Single(p => p.IsConcurrencyToken);

        string Placeholder(IProperty property) => sql.GenerateParameterNamePlaceholder(ParameterName(property));
        var text = $"UPDATE {EntityColumns.Table(sql, tokens)} SET " +
            string.Join(", ", columns.Where(c => c.Property != key).Select(c => $"{sql.DelimitIdentifier(c.Property.GetColumnName())} = {Placeholder(c.Property)}")) +
            $" WHERE {sql.DelimitIdentifier(key.GetColumnName())} = {Placeholder(key)}" +
            $" AND {sql.DelimitIdentifier(concurrency.GetColumnName())} = {sql.GenerateParameterNamePlaceholder(OriginalParameterName)}";
        var builder = db.GetService<IRelationalCommandBuilderFactory>().Create().Append(text);
        foreach (var column in columns)
        {
            builder.AddParameter(ParameterName(column.Property), sql.GenerateParameterName(ParameterName(column.Property)), column.Mapping,
                column.Property.IsNullable);
        }

        builder.AddParameter(OriginalParameterName, sql.GenerateParameterName(OriginalParameterName), concurrency.GetRelationalTypeMapping(), nullable: true);
        return new Update(builder.Build(), columns, OriginalParameterName);
    }
}
