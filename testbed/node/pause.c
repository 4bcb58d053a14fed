/* The pod sandbox ("pause") image's one program, made here because no registry is
 * reachable: it holds the pod's namespaces open, reaps the zombies of a shared PID
 * namespace, and exits on SIGINT or SIGTERM. Built static (gcc -static) so the image
 * needs nothing else. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
  (void)sig;
  _exit(0);
}

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction on_stop = {.sa_handler = stop}, on_child = {.sa_handler = reap,
                                                                 .sa_flags = SA_NOCLDSTOP};
  if (getpid() != 1)
    fprintf(stderr, "pause: not PID 1: will not reap zombies\n");
  if (sigaction(SIGINT, &on_stop, NULL) < 0 || sigaction(SIGTERM, &on_stop, NULL) < 0 ||
      sigaction(SIGCHLD, &on_child, NULL) < 0)
    return 1;
  for (;;)
    pause();
}
