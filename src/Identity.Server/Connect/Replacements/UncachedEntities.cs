using System.Collections.Immutable;
using OpenIddict.Abstractions;

namespace Identity.Server.Connect.Replacements;

// OpenIddict's entity caches, registered for its managers while entity caching is disabled (DisableEntityCaching,
// decision 0099): the managers then read their store and never call a cache, but still take one in their constructor.
// OpenIddict's own caches built a MemoryCache each, per request, and a cache entry with a change token per entity read:
// ~6 % of the bytes allocated per SSO round trip, for lookups that CodeIssuanceBatch, ClientApplicationManager and the
// ScopeCatalog already answer. Should a manager call one anyway, it reads the store, as a cache that holds nothing would.
// Each takes the store the manager takes (scoped: the same instance), so none costs more than its own small object.

/// <summary>An application "cache" that holds nothing (decision 0099).</summary>
public sealed class UncachedApplications<TApplication>(IOpenIddictApplicationStore<TApplication> store) : IOpenIddictApplicationCache<TApplication>
    where TApplication : class
{
    public ValueTask AddAsync(TApplication application, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask RemoveAsync(TApplication application, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask<TApplication?> FindByClientIdAsync(string identifier, CancellationToken cancellationToken) =>
        store.FindByClientIdAsync(identifier, cancellationToken);

    public ValueTask<TApplication?> FindByIdAsync(string identifier, CancellationToken cancellationToken) => store.FindByIdAsync(identifier, cancellationToken);

    public IAsyncEnumerable<TApplication> FindByPostLogoutRedirectUriAsync(string uri, CancellationToken cancellationToken) =>
        store.FindByPostLogoutRedirectUriAsync(uri, cancellationToken);

    public IAsyncEnumerable<TApplication> FindByRedirectUriAsync(string uri, CancellationToken cancellationToken) =>
        store.FindByRedirectUriAsync(uri, cancellationToken);
}

/// <summary>An authorization "cache" that holds nothing (decision 0099).</summary>
public sealed class UncachedAuthorizations<TAuthorization>(IOpenIddictAuthorizationStore<TAuthorization> store) : IOpenIddictAuthorizationCache<TAuthorization>
    where TAuthorization : class
{
    public ValueTask AddAsync(TAuthorization authorization, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask RemoveAsync(TAuthorization authorization, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public IAsyncEnumerable<TAuthorization> FindAsync(string? subject, string? client, string? status, string? type, ImmutableArray<string>? scopes,
        CancellationToken cancellationToken) => store.FindAsync(subject, client, status, type, scopes, cancellationToken);

    public IAsyncEnumerable<TAuthorization> FindByApplicationIdAsync(string identifier, CancellationToken cancellationToken) =>
        store.FindByApplicationIdAsync(identifier, cancellationToken);

    public ValueTask<TAuthorization?> FindByIdAsync(string identifier, CancellationToken cancellationToken) => store.FindByIdAsync(identifier, cancellationToken);

    public IAsyncEnumerable<TAuthorization> FindBySubjectAsync(string subject, CancellationToken cancellationToken) =>
        store.FindBySubjectAsync(subject, cancellationToken);
}

/// <summary>A scope "cache" that holds nothing (decision 0099).</summary>
public sealed class UncachedScopes<TScope>(IOpenIddictScopeStore<TScope> store) : IOpenIddictScopeCache<TScope>
    where TScope : class
{
    public ValueTask AddAsync(TScope scope, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask RemoveAsync(TScope scope, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask<TScope?> FindByIdAsync(string identifier, CancellationToken cancellationToken) => store.FindByIdAsync(identifier, cancellationToken);

    public ValueTask<TScope?> FindByNameAsync(string name, CancellationToken cancellationToken) => store.FindByNameAsync(name, cancellationToken);

    public IAsyncEnumerable<TScope> FindByNamesAsync(ImmutableArray<string> names, CancellationToken cancellationToken) =>
        store.FindByNamesAsync(names, cancellationToken);

    public IAsyncEnumerable<TScope> FindByResourceAsync(string resource, CancellationToken cancellationToken) =>
        store.FindByResourceAsync(resource, cancellationToken);
}

/// <summary>A token "cache" that holds nothing (decision 0099).</summary>
public sealed class UncachedTokens<TToken>(IOpenIddictTokenStore<TToken> store) : IOpenIddictTokenCache<TToken>
    where TToken : class
{
    public ValueTask AddAsync(TToken token, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask RemoveAsync(TToken token, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public IAsyncEnumerable<TToken> FindAsync(string? subject, string? client, string? status, string? type, CancellationToken cancellationToken) =>
        store.FindAsync(subject, client, status, type, cancellationToken);

    public IAsyncEnumerable<TToken> FindByApplicationIdAsync(string identifier, CancellationToken cancellationToken) =>
        store.FindByApplicationIdAsync(identifier, cancellationToken);

    public IAsyncEnumerable<TToken> FindByAuthorizationIdAsync(string identifier, CancellationToken cancellationToken) =>
        store.FindByAuthorizationIdAsync(identifier, cancellationToken);

    public ValueTask<TToken?> FindByIdAsync(string identifier, CancellationToken cancellationToken) => store.FindByIdAsync(identifier, cancellationToken);

    public ValueTask<TToken?> FindByReferenceIdAsync(string identifier, CancellationToken cancellationToken) =>
        store.FindByReferenceIdAsync(identifier, cancellationToken);

    public IAsyncEnumerable<TToken> FindBySubjectAsync(string subject, CancellationToken cancellationToken) =>
        store.FindBySubjectAsync(subject, cancellationToken);
}
