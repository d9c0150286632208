using System.Collections.Frozen;
using System.Collections.Immutable;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;

namespace Identity.Server.Connect;

/// <summary>
/// The scopes the authority knows, with the resources (audiences) each grants. Read from the database
/// and kept for <see cref="OidcOptions.ApplicationCacheDuration"/>, so scope checks on the token endpoint
/// cost no query; a scope added or changed anywhere is seen by every replica within that delay.
/// </summary>
public sealed class ScopeCatalog(IServiceScopeFactory scopes, IOptionsMonitor<OidcOptions> options, TimeProvider time) : IDisposable
{
    private readonly SemaphoreSlim _reload = new(1, 1);
    private volatile Snapshot? _snapshot;

    public async ValueTask<FrozenDictionary<string, ImmutableArray<string>>> GetAsync(CancellationToken cancellationToken)
    {
        var snapshot = _snapshot;
        if (snapshot is not null && time.GetUtcNow() < snapshot.ExpiresAt)
        {
            return snapshot.Resources;
        }

        await _reload.WaitAsync(cancellationToken);
        try
        {
            snapshot = _snapshot;
            if (snapshot is not null && time.GetUtcNow() < snapshot.ExpiresAt)
            {
                return snapshot.Resources;
            }

            await using var scope = scopes.CreateAsyncScope();
            var manager = scope.ServiceProvider.GetRequiredService<IOpenIddictScopeManager>();
            var resources = new Dictionary<string, ImmutableArray<string>>(StringComparer.Ordinal);
            await foreach (var entry in manager.ListAsync(count: null, offset: null, cancellationToken))
            {
                var name = await manager.GetNameAsync(entry, cancellationToken);
                if (name is not null)
                {
                    resources[name] = await manager.GetResourcesAsync(entry, cancellationToken);
                }
            }

            snapshot = new Snapshot(resources.ToFrozenDictionary(StringComparer.Ordinal),
                time.GetUtcNow() + options.CurrentValue.ApplicationCacheDuration);
            _snapshot = snapshot;
            return snapshot.Resources;
        }
        finally
        {
            _reload.Release();
        }
    }

    /// <summary>Forget the snapshot (after a local change), so the next request reads the database.</summary>
    public void Invalidate() => _snapshot = null;

    public void Dispose() => _reload.Dispose();

    private sealed record Snapshot(FrozenDictionary<string, ImmutableArray<string>> Resources, DateTimeOffset ExpiresAt);
}
