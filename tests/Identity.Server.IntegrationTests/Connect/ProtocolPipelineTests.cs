using Identity.Server.Connect;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OpenIddict.Server;
using OpenIddict.Validation;

namespace Identity.Server.IntegrationTests.Connect;

/// <summary>
/// The handlers Identity adds to OpenIddict's pipelines, as registered on a server with every option on (the mTLS
/// endpoint included): each placed at an order no other handler of its event has, all from the endpoint lists of
/// <see cref="ProtocolPipeline"/>, each list in the order its handlers run.
/// </summary>
public sealed class ProtocolPipelineTests(MutualTlsTests.MutualTlsServer server) : IClassFixture<MutualTlsTests.MutualTlsServer>
{
    private static readonly IReadOnlyList<OpenIddictServerHandlerDescriptor>[] ServerLists =
    [
        ProtocolPipeline.Token, ProtocolPipeline.ClientEndpoints, ProtocolPipeline.MutualTls, ProtocolPipeline.Authorization,
        ProtocolPipeline.Discovery, ProtocolPipeline.Tokens,
    ];

    private async Task<(List<OpenIddictServerHandlerDescriptor> Server, List<OpenIddictValidationHandlerDescriptor> Validation)> HandlersAsync()
    {
        await using var host = server.StartServer();
        return (host.Services.GetRequiredService<IOptionsMonitor<OpenIddictServerOptions>>().CurrentValue.Handlers,
            host.Services.GetRequiredService<IOptionsMonitor<OpenIddictValidationOptions>>().CurrentValue.Handlers);
    }

    // OpenIddict sorts its handlers with an unstable sort: two handlers of one event at the same order run in either
    // order, whichever way the sort happens to fall.
    [Fact]
    public async Task Handlers_OfIdentity_EachAtAnOrderNoOtherHandlerOfItsEventHas()
    {
        var (handlers, validation) = await HandlersAsync();

        var shared = handlers.Where(h => h.Type == OpenIddictServerHandlerType.Custom)
            .SelectMany(ours => handlers.Where(other => other != ours && other.ContextType == ours.ContextType && other.Order == ours.Order)
                .Select(other => $"{Name(ours.ServiceDescriptor)} and {Name(other.ServiceDescriptor)} on {ours.ContextType.Name} at {ours.Order}"))
            .Concat(validation.Where(h => h.Type == OpenIddictValidationHandlerType.Custom)
                .SelectMany(ours => validation.Where(other => other != ours && other.ContextType == ours.ContextType && other.Order == ours.Order)
                    .Select(other => $"{Name(ours.ServiceDescriptor)} and {Name(other.ServiceDescriptor)} on {ours.ContextType.Name} at {ours.Order}")))
            .ToList();

        Assert.Empty(shared);
    }

    [Fact]
    public async Task Handlers_OfIdentity_AllFromTheEndpointListsOnce()
    {
        var (handlers, validation) = await HandlersAsync();

        Assert.Equal(ServerLists.SelectMany(list => list).Select(Key).Order(StringComparer.Ordinal),
            handlers.Where(h => h.Type == OpenIddictServerHandlerType.Custom).Select(Key).Order(StringComparer.Ordinal));
        Assert.Equal(ProtocolPipeline.Validation.Select(d => Key(d.ServiceDescriptor, d.ContextType)).Order(StringComparer.Ordinal),
            validation.Where(h => h.Type == OpenIddictValidationHandlerType.Custom).Select(d => Key(d.ServiceDescriptor, d.ContextType))
                .Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Handlers_OfEachEndpointList_RunInTheListsOrder()
    {
        var (handlers, _) = await HandlersAsync();
        var position = handlers.Select((descriptor, index) => (Key: Key(descriptor), index)).ToDictionary(p => p.Key, p => p.index);

        foreach (var list in ServerLists)
        {
            foreach (var sameEvent in list.GroupBy(d => d.ContextType))
            {
                var positions = sameEvent.Select(d => position[Key(d)]).ToList();
                Assert.True(positions.SequenceEqual(positions.Order()),
                    $"{string.Join(", ", sameEvent.Select(d => Name(d.ServiceDescriptor)))} do not run in the list's order");
            }
        }
    }

    private static string Key(OpenIddictServerHandlerDescriptor descriptor) => Key(descriptor.ServiceDescriptor, descriptor.ContextType);

    private static string Key(ServiceDescriptor service, Type context) => $"{context.FullName}:{Name(service)}";

    private static string Name(ServiceDescriptor service) => service.ImplementationType?.FullName ?? service.ServiceType.FullName!;
}
