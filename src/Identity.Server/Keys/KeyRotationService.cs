using Identity.Core.Data;
using Microsoft.Extensions.Options;

namespace Identity.Server.Keys;

/// <summary>
/// Every <see cref="KeyRotationOptions.CheckInterval"/>, on every replica: create the next keys when due, delete retired
/// ones, and load what the database holds (keys created or revoked by another replica or through the admin API).
/// A failure (database unreachable) is logged and retried at the next interval; the keys already loaded keep working.
/// </summary>
public sealed class KeyRotationService(
    IServiceScopeFactory scopes,
    SigningKeyStore store,
    SigningKeyRing ring,
    IOptionsMonitor<KeyRotationOptions> options,
    ILogger<KeyRotationService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(options.CurrentValue.CheckInterval, stoppingToken);
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
                await store.MaintainAsync(db, stoppingToken);
                await ring.RefreshAsync(db, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception)
            {
                logger.LogWarning(exception, "Key maintenance failed; the loaded keys stay in use and it is retried in {Interval}",
                    options.CurrentValue.CheckInterval);
            }
        }
    }
}
