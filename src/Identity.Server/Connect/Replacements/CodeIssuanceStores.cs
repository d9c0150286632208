using System.Collections.Concurrent;
using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore;
using OpenIddict.EntityFrameworkCore.Models;

namespace Identity.Server.Connect.Replacements;

/// <summary>
/// One request's switch: while on, the authorization endpoint's writes — the code's ad-hoc authorization and the code's
/// token entry — are held in memory and written together, as one INSERT command, when OpenIddict stores the code's
/// payload (the last of them). Off again afterwards.
/// <para>
/// Without it OpenIddict writes them one by one: the client's row read for the authorization's foreign key, the
/// authorization inserted, the token entry inserted, then updated with the payload — four round trips on the path of
/// every sign-in of an app (bench/authcode-bench.sh). If the code is never produced, nothing is written: no code can
/// then refer to the authorization, so nothing is lost.
/// </para>
/// <para>
/// The held entities are not tracked by EF Core, and their rows are written by one command built from EF Core's model
/// (<see cref="HeldRowInserts"/>), not by <c>SaveChanges</c>: tracking two new entities, detecting their changes each
/// time OpenIddict read their client, and SaveChanges' batch preparation were ~14 % of the server's CPU per SSO round
/// trip (perf, 2026-12-04; decision 0070). Their foreign keys (client, authorization) are held here.
/// </para>
/// <para>
/// The token entries the token endpoint reads (the code's, the refresh token's) and their authorizations are known here
/// too, read without EF Core (<see cref="TokenEntryCommands"/>, decision 0093): untracked like the held ones, with their
/// foreign keys, found again by id or reference id, and redeemed by a conditional update.
/// </para>
/// </summary>
public sealed class CodeIssuanceBatch
{
    private readonly Dictionary<object, Dictionary<Type, string>> _keys = new(ReferenceEqualityComparer.Instance);
    private readonly List<object> _held = [];
    // In the database: written by this batch, or read by TokenEntryCommands.
    private readonly HashSet<object> _stored = new(ReferenceEqualityComparer.Instance);

    public bool Active { get; private set; }

    // The code redemption the next read by reference id is (decision 0101), and the entry that read redeemed.
    private CodeRedemption? _redeemOnRead;
    private (object Entry, DateTime RedemptionDate)? _redeemedOnRead;

    /// <summary>
    /// Makes this request's next read of a token entry by reference id the redemption of an authorization code, by one
    /// statement where the provider allows it (<see cref="TokenEntryCommands"/>; decision 0101). Set by
    /// <see cref="CodeRedemptionOnRead"/> at the token endpoint, once the client is authenticated.
    /// </summary>
    internal void RedeemOnRead(CodeRedemption redemption) => _redeemOnRead = redemption;

    internal CodeRedemption? TakeRedeemOnRead()
    {
        var redemption = _redeemOnRead;
        _redeemOnRead = null;
        return redemption;
    }

    /// <summary>An entry the read redeemed already, shown to OpenIddict as it was (valid, no redemption date).</summary>
    internal void RedeemedOnRead(object entry, DateTime redemptionDate) => _redeemedOnRead = (entry, redemptionDate);

    /// <summary>The redemption date the read stored, if <paramref name="entry"/> is the entry it redeemed (once).</summary>
    internal DateTime? TakeRedeemedOnRead(object entry)
    {
        if (_redeemedOnRead is not { } redeemed || !ReferenceEquals(redeemed.Entry, entry))
        {
            return null;
        }

        _redeemedOnRead = null;
        return redeemed.RedemptionDate;
    }

    public void Begin() => Active = true;

    public void End() => Active = false;

    /// <summary>Keeps a new entity to be written with the code's token entry.</summary>
    internal void Hold(object entity)
    {
        _held.Add(entity);
        _keys.TryAdd(entity, []);
    }

    /// <summary>An entity read from the database without EF Core's tracking, and its foreign keys (by principal type).</summary>
    internal void Adopt(object entity, Dictionary<Type, string> keys)
    {
        _keys[entity] = keys;
        _stored.Add(entity);
    }

    /// <summary>Whether this request holds (or held, and wrote, or read untracked) <paramref name="entity"/>.</summary>
    internal bool Knows(object entity) => _keys.ContainsKey(entity);

    /// <summary>Whether <paramref name="entity"/> is a row in the database that EF Core does not track: written by this batch, or adopted.</summary>
    internal bool Stored(object entity) => _stored.Contains(entity);

    /// <summary>The entity of this id that this request holds or wrote (it is not tracked: EF Core would not find it).</summary>
    internal T? Find<T>(string? id, Func<T, string?> idOf) where T : class
    {
        if (string.IsNullOrEmpty(id))
        {
            return null;
        }

        // A loop, not LINQ: called several times per request, on a handful of entities.
        foreach (var entity in _keys.Keys)
        {
            if (entity is T candidate && string.Equals(idOf(candidate), id, StringComparison.Ordinal))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>The foreign key of a held entity to its <paramref name="principal"/> (client or authorization).</summary>
    internal void SetKey(object entity, Type principal, string? key)
    {
        if (!_keys.TryGetValue(entity, out var keys))
        {
            keys = _keys[entity] = [];
        }

        if (string.IsNullOrEmpty(key))
        {
            keys.Remove(principal);
        }
        else
        {
            keys[principal] = key;
        }
    }

    internal string? KeyOf(object entity, Type principal) =>
        _keys.TryGetValue(entity, out var keys) && keys.TryGetValue(principal, out var key) ? key : null;

    /// <summary>Writes every held entity, in the order held (the authorization before the code that refers to it).</summary>
    internal async Task WriteAsync(DbContext db, CancellationToken cancellationToken)
    {
        End();
        await HeldRowInserts.ExecuteAsync(db, _held, this, cancellationToken);
        foreach (var entity in _held)
        {
            _stored.Add(entity);
        }

        _held.Clear();
    }

    /// <summary>
    /// Writes one new entity that OpenIddict creates outside the authorize request (the refresh token that replaces the
    /// one redeemed), with the foreign keys set on it here, by one INSERT: its client and authorization are not read for
    /// EF Core's navigations, and it is not tracked.
    /// </summary>
    internal async Task InsertAsync(DbContext db, object entity, CancellationToken cancellationToken)
    {
        await HeldRowInserts.ExecuteAsync(db, [entity], this, cancellationToken);
        _stored.Add(entity);
    }

    /// <summary>
    /// Before OpenIddict updates an entity this batch wrote or adopted (an authorization revoked after a replay): tracked
    /// as stored, with its foreign keys, so that the update writes them back instead of clearing them.
    /// </summary>
    internal void Attach(DbContext db, object entity)
    {
        var entry = db.Entry(entity);
        if (entry.State != EntityState.Detached)
        {
            return;
        }

        entry.State = EntityState.Unchanged;
        foreach (var foreignKey in entry.Metadata.GetForeignKeys())
        {
            if (KeyOf(entity, foreignKey.PrincipalEntityType.ClrType) is { } key && foreignKey.Properties is [var property])
            {
                var value = entry.Property(property.Name);
                value.CurrentValue = key;
                value.OriginalValue = key;
                value.IsModified = false;
            }
        }
    }
}

/// <summary>The authorization store, holding the code's ad-hoc authorization while a <see cref="CodeIssuanceBatch"/> is on.</summary>
public sealed class BatchedAuthorizationStore(
    IMemoryCache cache,
    IOpenIddictEntityFrameworkCoreContext context,
    IOptionsMonitor<OpenIddictEntityFrameworkCoreOptions> options,
    CodeIssuanceBatch batch)
    : OpenIddictEntityFrameworkCoreAuthorizationStore<OpenIddictEntityFrameworkCoreAuthorization, OpenIddictEntityFrameworkCoreApplication,
        OpenIddictEntityFrameworkCoreToken, string>(cache, context, options)
{
    public override async ValueTask CreateAsync(OpenIddictEntityFrameworkCoreAuthorization authorization, CancellationToken cancellationToken)
    {
        if (!batch.Active)
        {
            await base.CreateAsync(authorization, cancellationToken);
            return;
        }

        // The entity's constructor gave it its id: the code's principal can carry it before the row exists.
        batch.Hold(authorization);
    }

    public override async ValueTask SetApplicationIdAsync(
        OpenIddictEntityFrameworkCoreAuthorization authorization, string? identifier, CancellationToken cancellationToken)
    {
        if (!batch.Active && !batch.Knows(authorization))
        {
            await base.SetApplicationIdAsync(authorization, identifier, cancellationToken);
            return;
        }

        // The client's row is not read (OpenIddict's store loads it to set the navigation): OpenIddict resolved the
        // client from it moments before, and the database checks the foreign key when the row is written.
        batch.SetKey(authorization, typeof(OpenIddictEntityFrameworkCoreApplication), identifier);
    }

    public override ValueTask<string?> GetApplicationIdAsync(
        OpenIddictEntityFrameworkCoreAuthorization authorization, CancellationToken cancellationToken) =>
        batch.Knows(authorization)
            ? ValueTask.FromResult(batch.KeyOf(authorization, typeof(OpenIddictEntityFrameworkCoreApplication)))
            : base.GetApplicationIdAsync(authorization, cancellationToken);

    public override ValueTask<OpenIddictEntityFrameworkCoreAuthorization?> FindByIdAsync(string identifier, CancellationToken cancellationToken) =>
        batch.Find<OpenIddictEntityFrameworkCoreAuthorization>(identifier, a => a.Id) is { } held
            ? ValueTask.FromResult<OpenIddictEntityFrameworkCoreAuthorization?>(held)
            : base.FindByIdAsync(identifier, cancellationToken);

    public override async ValueTask UpdateAsync(OpenIddictEntityFrameworkCoreAuthorization authorization, CancellationToken cancellationToken)
    {
        if (batch.Stored(authorization))
        {
            batch.Attach(await Context.GetDbContextAsync(cancellationToken), authorization);
        }

        await base.UpdateAsync(authorization, cancellationToken);
    }
}

/// <summary>The token store, holding the code's token entry while a <see cref="CodeIssuanceBatch"/> is on and writing everything on its update.</summary>
public sealed class BatchedTokenStore(
    IMemoryCache cache,
    IOpenIddictEntityFrameworkCoreContext context,
    IOptionsMonitor<OpenIddictEntityFrameworkCoreOptions> options,
    CodeIssuanceBatch batch)
    : OpenIddictEntityFrameworkCoreTokenStore<OpenIddictEntityFrameworkCoreToken, OpenIddictEntityFrameworkCoreApplication,
        OpenIddictEntityFrameworkCoreAuthorization, string>(cache, context, options)
{
    public override async ValueTask CreateAsync(OpenIddictEntityFrameworkCoreToken token, CancellationToken cancellationToken)
    {
        if (batch.Active)
        {
            batch.Hold(token);
            return;
        }

        if (batch.Knows(token) && !batch.Stored(token))
        {
            // A new entry whose foreign keys were set here (the rotated refresh token): one INSERT, as the code's.
            await batch.InsertAsync(await Context.GetDbContextAsync(cancellationToken), token, cancellationToken);
            return;
        }

        await base.CreateAsync(token, cancellationToken);
    }

    public override async ValueTask SetApplicationIdAsync(
        OpenIddictEntityFrameworkCoreToken token, string? identifier, CancellationToken cancellationToken)
    {
        if (!batch.Active && !batch.Knows(token) && !await IsNewAsync(token, cancellationToken))
        {
            await base.SetApplicationIdAsync(token, identifier, cancellationToken);
            return;
        }

        batch.SetKey(token, typeof(OpenIddictEntityFrameworkCoreApplication), identifier);
    }

    /// <summary>
    /// Whether <paramref name="token"/> is one OpenIddict is about to create: neither tracked by EF Core nor read or
    /// written here. OpenIddict's store would read its client and authorization to set the navigations (two queries
    /// once the redeemed entry's are no longer tracked); its keys are held instead, and <see cref="CreateAsync"/> writes them.
    /// </summary>
    private async ValueTask<bool> IsNewAsync(OpenIddictEntityFrameworkCoreToken token, CancellationToken cancellationToken) =>
        (await Context.GetDbContextAsync(cancellationToken)).Entry(token).State == EntityState.Detached;

    public override ValueTask<string?> GetApplicationIdAsync(OpenIddictEntityFrameworkCoreToken token, CancellationToken cancellationToken) =>
        batch.Knows(token)
            ? ValueTask.FromResult(batch.KeyOf(token, typeof(OpenIddictEntityFrameworkCoreApplication)))
            : base.GetApplicationIdAsync(token, cancellationToken);

    public override async ValueTask SetAuthorizationIdAsync(
        OpenIddictEntityFrameworkCoreToken token, string? identifier, CancellationToken cancellationToken)
    {
        if (!batch.Active && !batch.Knows(token) && !await IsNewAsync(token, cancellationToken))
        {
            await base.SetAuthorizationIdAsync(token, identifier, cancellationToken);
            return;
        }

        // The code's ad-hoc authorization is held too (not yet a row OpenIddict's store could find); the database checks
        // the foreign key when both are written, the authorization first.
        batch.SetKey(token, typeof(OpenIddictEntityFrameworkCoreAuthorization), identifier);
    }

    public override ValueTask<string?> GetAuthorizationIdAsync(OpenIddictEntityFrameworkCoreToken token, CancellationToken cancellationToken) =>
        batch.Knows(token)
            ? ValueTask.FromResult(batch.KeyOf(token, typeof(OpenIddictEntityFrameworkCoreAuthorization)))
            : base.GetAuthorizationIdAsync(token, cancellationToken);

    // OpenIddict finds the code's entry again (by id, by reference id) while it issues it: EF Core's change tracker found
    // it there before; now the batch does. At the token endpoint the entry is read without EF Core (TokenEntryCommands),
    // unless EF Core tracks it (created by this request through the base store): OpenIddict's store looks there first too.
    public override ValueTask<OpenIddictEntityFrameworkCoreToken?> FindByIdAsync(string identifier, CancellationToken cancellationToken) =>
        batch.Find<OpenIddictEntityFrameworkCoreToken>(identifier, t => t.Id) is { } known
            ? ValueTask.FromResult<OpenIddictEntityFrameworkCoreToken?>(known)
            : ReadAsync(identifier, byReference: false, cancellationToken);

    public override ValueTask<OpenIddictEntityFrameworkCoreToken?> FindByReferenceIdAsync(string identifier, CancellationToken cancellationToken)
    {
        var redemption = batch.TakeRedeemOnRead();
        return batch.Find<OpenIddictEntityFrameworkCoreToken>(identifier, t => t.ReferenceId) is { } known
            ? ValueTask.FromResult<OpenIddictEntityFrameworkCoreToken?>(known)
            : ReadAsync(identifier, byReference: true, cancellationToken, redemption);
    }

    private async ValueTask<OpenIddictEntityFrameworkCoreToken?> ReadAsync(
        string identifier, bool byReference, CancellationToken cancellationToken, CodeRedemption? redemption = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(identifier);
        var db = await Context.GetDbContextAsync(cancellationToken);
        // The tracked entries by their keys only: no change detection over everything the context tracks.
        var detect = db.ChangeTracker.AutoDetectChangesEnabled;
        db.ChangeTracker.AutoDetectChangesEnabled = false;
        try
        {
            foreach (var entry in db.ChangeTracker.Entries<OpenIddictEntityFrameworkCoreToken>())
            {
                if (string.Equals(byReference ? entry.Entity.ReferenceId : entry.Entity.Id, identifier, StringComparison.Ordinal))
                {
                    return entry.Entity;
                }
            }
        }
        finally
        {
            db.ChangeTracker.AutoDetectChangesEnabled = detect;
        }

        return await TokenEntryCommands.ReadAsync(db, identifier, byReference, redemption, batch, cancellationToken);
    }

    public override async ValueTask UpdateAsync(OpenIddictEntityFrameworkCoreToken token, CancellationToken cancellationToken)
    {
        var db = await Context.GetDbContextAsync(cancellationToken);
        if (batch.Active && batch.Knows(token))
        {
            // The code's payload is attached: write the authorization and the token entry as they now are, in one command.
            token.ConcurrencyToken = Guid.NewGuid().ToString();
            await batch.WriteAsync(db, cancellationToken);
            return;
        }

        if (batch.TakeRedeemedOnRead(token) is { } redeemed && token.Status == OpenIddictConstants.Statuses.Redeemed)
        {
            // TryRedeemAsync, for the code this request's read redeemed (decision 0101): the row is as OpenIddict wants it
            // already, with the redemption date the read stored. Any other change goes through the conditional update
            // below, against the concurrency token the read wrote.
            token.RedemptionDate = redeemed;
            return;
        }

        if (batch.Stored(token))
        {
            // As OpenIddict's store: a new concurrency token, written only where the row still has the one read. The
            // redemption (TryRedeemAsync) relies on it: of N requests redeeming one code, one updates the row, the others
            // get the ConcurrencyException that makes OpenIddict refuse them (RFC 6749 §4.1.2: a code is used once).
            var original = token.ConcurrencyToken;
            token.ConcurrencyToken = Guid.NewGuid().ToString();
            if (!await TokenEntryCommands.TryUpdateAsync(db, token, original, batch, cancellationToken))
            {
                throw new OpenIddictExceptions.ConcurrencyException(
                    "The token entry was changed by another request (redeemed, revoked or deleted) since it was read.");
            }

            return;
        }

        await base.UpdateAsync(token, cancellationToken);
    }
}

/// <summary>
/// Writes entities the <see cref="CodeIssuanceBatch"/> holds, without EF Core's change tracker: one INSERT per row, all
/// in one command built from EF Core's model (decision 0070) and run as an EF Core relational command on the context's
/// connection and transaction (<see cref="TemplateCommands"/>), as <see cref="TokenEntryCommands"/>' are.
/// </summary>
internal static class HeldRowInserts
{
    private sealed record Column(string ParameterName, IProperty Property, Type? Principal);

    /// <summary>The command for one sequence of entity types: each row's INSERT, with parameters of its own (r0_, r1_, …).</summary>
    private sealed record Insert(IRelationalCommand Command, Column[][] Rows, int ParameterCount);

    // One command per model and sequence of entity types (the authorize request's authorization and code, a rotated
    // refresh token alone, …), built once: its text and parameters are the same on every request, so nothing of the
    // statement is assembled, and no parameter copied, per code (decision 0098).
    private static readonly ConcurrentDictionary<Shape, Insert> Inserts = new();

    public static async Task ExecuteAsync(DbContext db, IReadOnlyList<object> entities, CodeIssuanceBatch keys, CancellationToken cancellationToken)
    {
        if (entities.Count == 0)
        {
            return;
        }

        var types = new Type[entities.Count];
        for (var i = 0; i < types.Length; i++)
        {
            types[i] = entities[i].GetType();
        }

        var insert = Inserts.GetOrAdd(new Shape(db.Model, types), static (shape, db) => Build(db, shape.Types), db);
        var values = new Dictionary<string, object?>(insert.ParameterCount);
        for (var i = 0; i < entities.Count; i++)
        {
            foreach (var column in insert.Rows[i])
            {
                values[column.ParameterName] = EntityColumns.ValueOf(column.Property, column.Principal, entities[i], keys);
            }
        }

        await TemplateCommands.ExecuteNonQueryAsync(db, insert.Command, values, CommandSource.ExecuteSqlRaw, cancellationToken);
    }

    private static Insert Build(DbContext db, Type[] types)
    {
        var sql = db.GetService<ISqlGenerationHelper>();
        var builder = db.GetService<IRelationalCommandBuilderFactory>().Create();
        var rows = new Column[types.Length][];
        for (var i = 0; i < types.Length; i++)
        {
            var entityType = db.Model.FindEntityType(types[i]) ?? throw new InvalidOperationException($"{types[i]} is not in the model.");
            // Each row's parameters get their own prefix, so the statements can share one command.
            var prefix = "r" + i.ToString(System.Globalization.CultureInfo.InvariantCulture) + "_";
            var columns = EntityColumns.Of(entityType).Select(c => new Column(prefix + c.Property.GetColumnName(), c.Property, c.Principal)).ToArray();
            builder.Append($"INSERT INTO {EntityColumns.Table(sql, entityType)} " +
                $"({string.Join(", ", columns.Select(c => sql.DelimitIdentifier(c.Property.GetColumnName())))}) " +
                $"VALUES ({string.Join(", ", columns.Select(c => sql.GenerateParameterNamePlaceholder(c.ParameterName)))});\n");
            foreach (var column in columns)
            {
                builder.AddParameter(column.ParameterName, sql.GenerateParameterName(column.ParameterName),
                    column.Property.GetRelationalTypeMapping(), column.Property.IsNullable);
            }

            rows[i] = columns;
        }

        return new Insert(builder.Build(), rows, rows.Sum(r => r.Length));
    }

    /// <summary>A model and a sequence of entity types, equal by the types in order.</summary>
    private sealed class Shape(IModel model, Type[] types) : IEquatable<Shape>
    {
        public IModel Model { get; } = model;

        public Type[] Types { get; } = types;

        public bool Equals(Shape? other) =>
            other is not null && ReferenceEquals(Model, other.Model) && Types.AsSpan().SequenceEqual(other.Types);

        public override bool Equals(object? obj) => Equals(obj as Shape);

        public override int GetHashCode()
        {
            var hash = new HashCode();
            hash.Add(Model);
            foreach (var type in Types)
            {
                hash.Add(type);
            }

            return hash.ToHashCode();
        }
    }
}

/// <summary>
/// The mapped properties of an OpenIddict entity as the replacements that write and read its rows without EF Core's
/// change tracker see them (<see cref="HeldRowInserts"/>, <see cref="TokenEntryCommands"/>): a shadow property is a
/// foreign key (to the client or the authorization) whose value the <see cref="CodeIssuanceBatch"/> holds beside the
/// entity; every other property has a CLR property.
/// </summary>
internal static class EntityColumns
{
    /// <summary>Each mapped property, with the principal's type when it is a foreign key held by the batch.</summary>
    public static IEnumerable<(IProperty Property, Type? Principal)> Of(IEntityType entityType) =>
        entityType.GetProperties().Select(property =>
        {
            var principal = property.IsShadowProperty()
                ? property.GetContainingForeignKeys().Single().PrincipalEntityType.ClrType
                : null;
            if (principal is null && property.PropertyInfo is null)
            {
                throw new InvalidOperationException($"{entityType.DisplayName()}.{property.Name} has no CLR property.");
            }

            return (property, principal);
        });

    /// <summary>The value a row's column holds for <paramref name="entity"/>: its foreign key from the batch, or its property.</summary>
    public static object? ValueOf(IProperty property, Type? principal, object entity, CodeIssuanceBatch keys) =>
        principal is { } type ? keys.KeyOf(entity, type) : property.PropertyInfo!.GetValue(entity);

    /// <summary>The entity's table, quoted (with its schema) for the provider.</summary>
    public static string Table(ISqlGenerationHelper sql, IEntityType entityType) =>
        sql.DelimitIdentifier(entityType.GetTableName()!, entityType.GetSchema());
}
