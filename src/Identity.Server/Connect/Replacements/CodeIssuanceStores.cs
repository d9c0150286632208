using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using OpenIddict.EntityFrameworkCore;
using OpenIddict.EntityFrameworkCore.Models;

namespace Identity.Server.Connect.Replacements;

/// <summary>
/// One request's switch: while on, the authorization endpoint's writes — the code's ad-hoc authorization and the code's
/// token entry — are kept in the request's database context and written together, in one transaction and one round trip,
/// when OpenIddict stores the code's payload (the last of them). Off again afterwards.
/// <para>
/// Without it OpenIddict writes them one by one: the client's row read for the authorization's foreign key, the
/// authorization inserted, the token entry inserted, then updated with the payload — four round trips on the path of
/// every sign-in of an app (bench/authcode-bench.sh). If the code is never produced, nothing is written: no code can
/// then refer to the authorization, so nothing is lost.
/// </para>
/// </summary>
public sealed class CodeIssuanceBatch
{
    public bool Active { get; private set; }

    public void Begin() => Active = true;

    public void End() => Active = false;
}

/// <summary>The authorization store, deferring the insert while a <see cref="CodeIssuanceBatch"/> is on.</summary>
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
        (await Context.GetDbContextAsync(cancellationToken)).Add(authorization);
    }

    public override async ValueTask SetApplicationIdAsync(
        OpenIddictEntityFrameworkCoreAuthorization authorization, string? identifier, CancellationToken cancellationToken)
    {
        if (!batch.Active || string.IsNullOrEmpty(identifier))
        {
            await base.SetApplicationIdAsync(authorization, identifier, cancellationToken);
            return;
        }

        await BatchedWrites.SetApplicationKeyAsync(Context, authorization, identifier, cancellationToken);
    }

    public override async ValueTask<string?> GetApplicationIdAsync(
        OpenIddictEntityFrameworkCoreAuthorization authorization, CancellationToken cancellationToken) =>
        authorization.Application is null && await BatchedWrites.ApplicationKeyAsync(Context, authorization, cancellationToken) is { } key
            ? key
            : await base.GetApplicationIdAsync(authorization, cancellationToken);
}

/// <summary>The token store, deferring the code's token entry while a <see cref="CodeIssuanceBatch"/> is on and writing everything on its update.</summary>
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
        if (!batch.Active)
        {
            await base.CreateAsync(token, cancellationToken);
            return;
        }

        (await Context.GetDbContextAsync(cancellationToken)).Add(token);
    }

    public override async ValueTask SetApplicationIdAsync(
        OpenIddictEntityFrameworkCoreToken token, string? identifier, CancellationToken cancellationToken)
    {
        if (!batch.Active || string.IsNullOrEmpty(identifier))
        {
            await base.SetApplicationIdAsync(token, identifier, cancellationToken);
            return;
        }

        await BatchedWrites.SetApplicationKeyAsync(Context, token, identifier, cancellationToken);
    }

    public override async ValueTask<string?> GetApplicationIdAsync(OpenIddictEntityFrameworkCoreToken token, CancellationToken cancellationToken) =>
        token.Application is null && await BatchedWrites.ApplicationKeyAsync(Context, token, cancellationToken) is { } key
            ? key
            : await base.GetApplicationIdAsync(token, cancellationToken);

    public override async ValueTask UpdateAsync(OpenIddictEntityFrameworkCoreToken token, CancellationToken cancellationToken)
    {
        var db = await Context.GetDbContextAsync(cancellationToken);
        if (!batch.Active || db.Entry(token).State != EntityState.Added)
        {
            await base.UpdateAsync(token, cancellationToken);
            return;
        }

        // The code's payload is attached: write the authorization and the token entry as they now are, in one batch.
        batch.End();
        token.ConcurrencyToken = Guid.NewGuid().ToString();
        await db.SaveChangesAsync(cancellationToken);
    }
}

internal static class BatchedWrites
{
    /// <summary>
    /// The client's key of a tracked entity, read from its foreign key instead of loading the client's row (OpenIddict's
    /// stores load the navigation to read its id); <c>null</c> for an entity not tracked, which the base store handles.
    /// </summary>
    public static async ValueTask<string?> ApplicationKeyAsync(
        IOpenIddictEntityFrameworkCoreContext context, object entity, CancellationToken cancellationToken)
    {
        var entry = (await context.GetDbContextAsync(cancellationToken)).Entry(entity);
        return entry.State == EntityState.Detached ? null : entry.Property("ApplicationId").CurrentValue as string;
    }

    /// <summary>
    /// Sets the foreign key to the client without reading the client's row (OpenIddict's stores load it to set the
    /// navigation). The row exists: OpenIddict resolved the client from it moments before, and the foreign key is checked
    /// by the database when the batch is written.
    /// </summary>
    public static async ValueTask SetApplicationKeyAsync(
        IOpenIddictEntityFrameworkCoreContext context, object entity, string identifier, CancellationToken cancellationToken)
    {
        var entry = (await context.GetDbContextAsync(cancellationToken)).Entry(entity);
        if (entry.State == EntityState.Detached)
        {
            // Tracked now (OpenIddict adds it right after populating it), so that the key is kept with the entry.
            entry.State = EntityState.Added;
        }

        entry.Property("ApplicationId").CurrentValue = identifier;
    }
}
