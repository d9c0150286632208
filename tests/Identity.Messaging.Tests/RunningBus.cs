using MassTransit;

namespace Identity.Messaging.Tests;

/// <summary>A started MassTransit bus that stops when disposed (<c>await using</c>).</summary>
public sealed class RunningBus : IAsyncDisposable
{
    private RunningBus(IBusControl bus) => Bus = bus;

    public IBusControl Bus { get; }

    public static async Task<RunningBus> StartAsync(IBusControl bus, CancellationToken cancellationToken)
    {
        await bus.StartAsync(cancellationToken);
        return new RunningBus(bus);
    }

    public Task SendToRegionAsync<T>(string region, T message, CancellationToken cancellationToken)
        where T : class => Bus.SendToRegionAsync(region, message, cancellationToken);

    public async ValueTask DisposeAsync() => await Bus.StopAsync(CancellationToken.None);
}
